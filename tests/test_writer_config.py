"""The [influxdb] section: defaults, secrets, cross-field errors located at the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from prober.config.influxdb import InfluxDBv1Config, InfluxDBv2Config, InfluxQLTarget, SpoolConfig, influxdb_config


def errors(**kwargs) -> list[tuple[tuple, str]]:
    """(location without the version's union tag, message) of each error."""
    with pytest.raises(ValidationError) as info:
        influxdb_config(**kwargs)
    return [(tuple(p for p in e["loc"] if p not in ("v1", "v2")), e["msg"]) for e in info.value.errors()]


def test_defaults_v2():
    c = influxdb_config(url="https://influx.example:8086/", org="ops", bucket="prober", token="s3cret")
    assert c.url == "https://influx.example:8086"
    assert (c.api, c.precision, c.gzip, c.verify_tls) == ("v2", "ns", True, True)
    assert (c.timeout, c.batch_size, c.flush_interval) == (10.0, 5000, 1.0)
    assert (c.spool_dir, c.spool_max_mb) == ("var/spool", 512)
    assert "s3cret" not in repr(c) and "s3cret" not in c.describe()
    assert isinstance(c, InfluxDBv2Config) and c.token is not None
    assert c.token.get_secret_value() == "s3cret"


def test_secret_files_are_read_at_load(tmp_path):
    token = tmp_path / "token"
    token.write_text("from-file\n")
    c = influxdb_config(url="http://h", org="o", bucket="b", token_file=str(token))
    assert isinstance(c, InfluxDBv2Config) and c.token is not None
    assert c.token.get_secret_value() == "from-file"
    pw = tmp_path / "pw"
    pw.write_text("pw-file")
    c = influxdb_config(url="http://h", api="v1", database="d", username="u", password_file=str(pw))
    assert isinstance(c, InfluxDBv1Config) and c.password is not None
    assert c.password.get_secret_value() == "pw-file"


@pytest.mark.parametrize(
    ("kwargs", "loc", "fragment"),
    [
        (dict(url="ftp://h", org="o", bucket="b"), ("url",), "http:// or https://"),
        (dict(url="http://u:p@h", org="o", bucket="b"), ("url",), "credentials"),
        (dict(url="http://h", bucket="b"), ("org",), "Field required"),
        (dict(url="http://h", org="o"), ("bucket",), "Field required"),
        (dict(url="http://h", org="", bucket="b"), ("org",), "at least 1 character"),
        (dict(url="http://h", api="v1"), ("database",), "Field required"),
        (dict(url="http://h", api="v1", database="d", token="t"), ("token",), "Extra inputs"),
        (dict(url="http://h", org="o", bucket="b", database="d"), ("database",), "Extra inputs"),
        (dict(url="http://h", org="o", bucket="b", create_database=True), ("create_database",), "Extra inputs"),
        (dict(url="http://h", api="v3", org="o", bucket="b"), (), 'api must be "v2" or "v1"'),
        (dict(url="http://h", org="o", bucket="b", token_file="/nonexistent/t"), (), "`token_file`: cannot read"),
        (dict(url="http://h", org="o", bucket="b", precision="n"), ("precision",), ""),
        (dict(url="http://h", org="o", bucket="b", timeout=10), ("timeout",), "duration"),
        (dict(url="http://h", org="o", bucket="b", batch_size=0), ("batch_size",), ""),
        (dict(url="http://h", org="o", bucket="b", extra=1), ("extra",), ""),
    ],
)
def test_invalid(kwargs, loc, fragment):
    found = errors(**kwargs)
    assert any(where == loc and fragment in m for where, m in found), found


def test_token_and_token_file_conflict_without_echoing_the_secret(tmp_path):
    f = tmp_path / "t"
    f.write_text("x")
    with pytest.raises(ValidationError) as info:
        influxdb_config(url="http://h", org="o", bucket="b", token="TOPSECRET", token_file=str(f))
    assert "`token_file`" in str(info.value) and "not both" in str(info.value)
    assert "TOPSECRET" not in str(info.value)
    with pytest.raises(ValidationError) as info:
        influxdb_config(url="http://h", api="v1", database="d", password="TOPSECRET")
    assert "username is required" in str(info.value) and "TOPSECRET" not in str(info.value)


def test_spool_config_defaults():
    s = SpoolConfig()
    assert (s.spool_dir, s.spool_max_mb, s.batch_size, s.flush_interval) == ("var/spool", 512, 5000, 1.0)


def test_each_version_is_its_own_model():
    v2 = influxdb_config(url="http://h", org="o", bucket="b", token="t")
    v1 = influxdb_config(url="http://h", api="v1", database="d", username="u", password="p")
    assert isinstance(v2, InfluxDBv2Config) and isinstance(v1, InfluxDBv1Config)
    assert not hasattr(v2, "database") and not hasattr(v1, "token")
    assert v2.influxql_target() == InfluxQLTarget("b", None, "Token t")
    assert v1.influxql_target() == InfluxQLTarget("d", None, "Basic dTpw")
    assert v1.secrets() == ("p",) and v2.secrets() == ("t",)
