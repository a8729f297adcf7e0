"""The prober's own certificates: files read for their facts, the inventory of a
configuration, the warning ladder, and what ``prober validate`` says of them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from prober.certfacts import CertificateFacts
from prober.certificates import (
    CertificateFileError,
    Ladder,
    assess,
    own_certificates,
    read_certificate_file,
)
from prober.config.errors import ConfigError
from prober.loading import load
from tests.certificates import days, root, write
from tests.cli import run_prober

DAY = 86_400


def facts(not_before: float, not_after: float) -> CertificateFacts:
    return CertificateFacts("CN=x", "CN=ca", int(not_before), int(not_after), "ff")


# -- the ladder -----------------------------------------------------------------------------


@pytest.mark.parametrize(("days_left", "state", "step"), [
    (45, "ok", None), (30.5, "ok", None), (30, "warning", 30), (29.9, "warning", 30), (14, "warning", 14),
    (13, "warning", 14), (7, "warning", 7), (2, "warning", 7), (0.5, "warning", 1), (0, "expired", 0),
    (-3, "expired", 0),
])
def test_the_ladder_step_reached(days_left: float, state: str, step: int | None) -> None:
    now = 1_800_000_000.0
    verdict = assess(facts(now - 100 * DAY, now + days_left * DAY), now, Ladder())
    assert (verdict.state, verdict.step) == (state, step)
    assert verdict.days_left == pytest.approx(days_left)


def test_a_certificate_not_valid_yet_and_the_words() -> None:
    now = 1_800_000_000.0
    early = assess(facts(now + DAY, now + 90 * DAY), now, Ladder())
    assert early.state == "not_yet_valid" and early.unusable and early.words() == "is not valid yet"
    assert assess(facts(now - DAY, now + 13.4 * DAY), now, Ladder()).words() == "expires in 13 days"
    assert assess(facts(now - DAY, now + 0.25 * DAY), now, Ladder()).words() == "expires in 6 hours"
    assert assess(facts(now - 9 * DAY, now - 2 * DAY), now, Ladder()).words() == "expired 2 days ago"


def test_a_ladder_of_its_own_and_the_clock_it_trusts() -> None:
    """The host's clock is the only clock: 20 days ahead, a certificate with 30 days left
    is at the 14-day step; the same certificate, judged by a correct clock, at 30."""
    now = 1_800_000_000.0
    cert = facts(now - DAY, now + 29 * DAY)
    assert assess(cert, now, Ladder()).step == 30
    assert assess(cert, now + 20 * DAY, Ladder()).step == 14
    assert assess(cert, now - 40 * DAY, Ladder()).state == "not_yet_valid"
    assert Ladder((3, 60, 10)).days == (60, 10, 3) and Ladder((60, 10, 3)).step(11) == 60
    with pytest.raises(ValueError):
        Ladder((0,))


# -- files ----------------------------------------------------------------------------------


def test_a_file_with_chain_and_key_is_read_for_its_certificates_only(tmp_path: Path) -> None:
    anchor = root()
    intermediate = anchor.issue("QWAC Intermediate", ca=True, not_after=days(10))
    leaf = intermediate.issue("prober-qwac", client=True, not_after=days(200))
    path = write(tmp_path / "qwac.pem", leaf.cert_pem, leaf.key_pem, intermediate.cert_pem)
    found = read_certificate_file(str(path))
    assert found.leaf.subject == leaf.subject and found.leaf.not_after == leaf.not_after
    assert found.earliest.subject == intermediate.subject
    der = tmp_path / "qwac.der"
    from cryptography.hazmat.primitives.serialization import Encoding

    der.write_bytes(leaf.cert.public_bytes(Encoding.DER))
    assert read_certificate_file(str(der)).leaf == found.leaf


def test_unreadable_and_non_pem_files_are_named_never_quoted(tmp_path: Path) -> None:
    secret = tmp_path / "not-a-cert.pem"
    secret.write_text("-----BEGIN CERTIFICATE-----\nc2VjcmV0LXRva2VuLWluc2lkZQ==\n-----END CERTIFICATE-----\n")
    with pytest.raises(CertificateFileError) as raised:
        read_certificate_file(str(secret))
    assert str(raised.value) == f"cannot load certificate file {secret}: not a PEM or DER certificate"
    with pytest.raises(CertificateFileError, match="no such file or directory"):
        read_certificate_file(str(tmp_path / "missing.pem"))
    if os.geteuid() != 0:  # root reads anything
        locked = write(tmp_path / "locked.pem", root().cert_pem)
        locked.chmod(0)
        with pytest.raises(CertificateFileError, match="permission denied"):
            read_certificate_file(str(locked))


# -- the inventory --------------------------------------------------------------------------


def own_config(tmp_path: Path, client: Path | None, signing: tuple[Path, Path] | None = None,
               step_signing: tuple[Path, Path] | None = None, extra: str = "") -> Path:
    tls = f'[sites.tls]\ncert_file = "{client}"\nkey_file = "{client}"\n' if client else ""
    sign = (f'[sites.signing]\nprofile = "berlin-group"\nkey_file = "{signing[0]}"\n'
            f'certificate_file = "{signing[1]}"\n') if signing else ""
    step_sign = (f'signing = {{ profile = "berlin-group", key_file = "{step_signing[0]}", '
                 f'certificate_file = "{step_signing[1]}" }}\n') if step_signing else ""
    (tmp_path / "own.toml").write_text(f"""
[daemon]
state_dir = "{tmp_path / 'state'}"
{extra}
[[sites]]
name = "bank"
base_url = "https://127.0.0.1:1"
{tls}{sign}
[[sites.checks]]
name = "login"
kind = "login"
  [[sites.checks.steps]]
  name = "token"
  method = "POST"
  path = "/oauth/token"
  form = {{ grant_type = "client_credentials" }}
  sign = false
[[sites.checks]]
name = "accounts"
kind = "accounts"
  [[sites.checks.steps]]
  name = "list"
  path = "/accounts"
[[sites.checks]]
name = "funds"
kind = "payments"
  [[sites.checks.steps]]
  name = "confirm"
  method = "POST"
  path = "/funds"
  json = {{ a = 1 }}
  {step_sign}
""")
    return tmp_path / "own.toml"


def pair(tmp_path: Path, name: str, not_after_days: float, not_before_days: float = -1):
    issued = root().issue(name, client=True, not_before=days(not_before_days), not_after=days(not_after_days))
    return write(tmp_path / f"{name}.pem", issued.cert_pem, issued.key_pem), issued


def test_the_inventory_names_each_file_its_purpose_and_its_users(tmp_path: Path) -> None:
    client, _ = pair(tmp_path, "qwac", 200)
    seal_key = write(tmp_path / "qseal.key", (issued := root().issue("qseal", client=True)).key_pem)
    seal = write(tmp_path / "qseal.pem", issued.cert_pem)
    other_key = write(tmp_path / "other.key", (other := root().issue("other-seal", client=True)).key_pem)
    other_cert = write(tmp_path / "other.pem", other.cert_pem)
    loaded = load(own_config(tmp_path, client, (seal_key, seal), (other_key, other_cert)), environ={})
    found = {c.name: c for c in own_certificates(loaded.config)}
    assert set(found) == {"client", "signing", "signing:funds/confirm"}
    assert found["client"].checks == ("login", "accounts", "funds")
    assert found["client"].field == "sites[bank].tls.cert_file" and found["client"].purpose == "client"
    # the token step is not signed (sign = false) and funds signs with its own file
    assert found["signing"].checks == ("accounts",) and found["signing"].kinds == ("accounts",)
    assert found["signing:funds/confirm"].kinds == ("payments",)
    assert found["signing:funds/confirm"].field == \
        "sites[bank].checks[funds].steps[confirm].signing.certificate_file"


def test_one_file_for_two_uses_is_listed_once(tmp_path: Path) -> None:
    seal_key = write(tmp_path / "qseal.key", (issued := root().issue("qseal", client=True)).key_pem)
    seal = write(tmp_path / "qseal.pem", issued.cert_pem)
    loaded = load(own_config(tmp_path, None, (seal_key, seal), (seal_key, seal)), environ={})
    (only,) = own_certificates(loaded.config)
    assert (only.name, only.checks) == ("signing", ("accounts", "funds"))


def test_the_ladder_is_configurable(tmp_path: Path) -> None:
    client, _ = pair(tmp_path, "qwac", 200)
    loaded = load(own_config(tmp_path, client, extra="[certificates]\nwarn_days = [7, 60, 21]\ncheck_every = \"5s\""),
                  environ={})
    assert loaded.config.certificates.warn_days == [60, 21, 7]
    assert loaded.config.certificates.check_every == 5.0
    with pytest.raises(ConfigError, match=r"certificates\.warn_days.*0 is not a number of days"):
        load(own_config(tmp_path, client, extra="[certificates]\nwarn_days = [30, 0]"), environ={})
    with pytest.raises(ConfigError, match=r"certificates\.warn_days.*given once"):
        load(own_config(tmp_path, client, extra="[certificates]\nwarn_days = [7, 7]"), environ={})


# -- prober validate ------------------------------------------------------------------------


async def test_validate_warns_about_a_certificate_within_the_first_step(tmp_path: Path) -> None:
    client, issued = pair(tmp_path, "qwac", 12.5)
    config = own_config(tmp_path, client)
    done = await run_prober("validate", "-c", str(config))
    assert done.returncode == 0, done.stderr
    warning, valid = done.stdout.splitlines()
    assert warning.startswith(f"warning: {config}: sites[bank].tls.cert_file: certificate {client} "
                              f"({issued.subject}) expires in 12 days (")
    assert warning.endswith("), within the 30-day warning of [certificates] warn_days")
    assert valid.startswith(f"{config}: valid")
    assert issued.key_pem.decode().splitlines()[2] not in done.stdout + done.stderr


async def test_validate_is_quiet_about_a_certificate_far_from_expiry(tmp_path: Path) -> None:
    client, _ = pair(tmp_path, "qwac", 90)
    done = await run_prober("validate", "-c", str(own_config(tmp_path, client)))
    assert done.returncode == 0 and "warning" not in done.stdout and done.stderr == ""


async def test_validate_refuses_an_expired_certificate_naming_field_and_file(tmp_path: Path) -> None:
    client, issued = pair(tmp_path, "qwac", -2, not_before_days=-100)
    config = own_config(tmp_path, client)
    done = await run_prober("validate", "-c", str(config))
    assert done.returncode == 2
    assert done.stderr.startswith(f"config error: {config}: sites[bank].tls.cert_file: certificate {client} "
                                  f"({issued.subject}) expired on ")
    assert "Traceback" not in done.stderr and issued.key_pem.decode().splitlines()[2] not in done.stderr


async def test_validate_refuses_a_certificate_not_valid_yet(tmp_path: Path) -> None:
    seal = root().issue("qseal", client=True, not_before=days(3), not_after=days(400))
    key, cert = write(tmp_path / "qseal.key", seal.key_pem), write(tmp_path / "qseal.pem", seal.cert_pem)
    config = own_config(tmp_path, None, (key, cert))
    done = await run_prober("validate", "-c", str(config))
    assert done.returncode == 2, done.stdout
    assert (f"config error: {config}: sites[bank].signing.certificate_file: certificate {cert} ({seal.subject}) "
            f"is not valid before ") in done.stderr
    assert "this host's clock says" in done.stderr


async def test_validate_names_a_non_pem_client_certificate(tmp_path: Path) -> None:
    """Found when the site's TLS context is built, before the dates are looked at."""
    bad = tmp_path / "qwac.pem"
    bad.write_text("not a certificate at all\n")
    done = await run_prober("validate", "-c", str(own_config(tmp_path, bad)))
    assert done.returncode == 2 and "sites[bank].tls: cannot load certificate or key" in done.stderr
    assert "Traceback" not in done.stderr


def test_validation_reads_at_the_time_it_is_given(tmp_path: Path) -> None:
    from prober.certificates.validation import check_configured

    client, _ = pair(tmp_path, "qwac", 100)
    loaded = load(own_config(tmp_path, client), environ={})
    assert check_configured(loaded.config, loaded.site_files, time.time()) == ([], [])
    problems, warnings = check_configured(loaded.config, loaded.site_files, time.time() + 80 * DAY)
    assert problems == [] and len(warnings) == 1 and "expires in 20 days" in warnings[0]
    problems, _ = check_configured(loaded.config, loaded.site_files, time.time() + 101 * DAY)
    assert len(problems) == 1 and "expired on" in problems[0]
