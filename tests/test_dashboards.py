"""Grafana dashboards: the structural check (and that it can fail), macro expansion, provisioning."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from grafana.check import DASHBOARD_DIR, check_dashboard, check_files
from grafana.expand import (
    ALL,
    TimeRange,
    Variable,
    calculate_interval,
    escape_regex,
    expand,
    format_interval,
    parse_interval,
    time_filter,
    variables_of,
)

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted(DASHBOARD_DIR.glob("*.json"))
PROVISIONING = ROOT / "grafana" / "provisioning"


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def first_query_panel(dashboard: dict) -> dict:
    return next(p for p in dashboard["panels"] if p.get("targets"))


# -- the shipped dashboards pass ---------------------------------------------------------


def test_five_dashboards_are_shipped():
    assert {p.stem for p in DASHBOARDS} == {"overview", "journey-detail", "locations", "prober-health",
                                            "psd2-availability"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_shipped_dashboard_passes_the_check(path):
    assert check_dashboard(load(path), path.name) == []


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_shipped_dashboard_follows_the_conventions(path):
    dashboard = load(path)
    names = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert names["datasource"]["type"] == "datasource" and names["datasource"]["query"] == "influxdb"
    if path.stem == "psd2-availability":  # reads the psd2_daily points: no check, kind or location there
        assert {"site", "interface", "api", "tz"} <= set(names)
    elif path.stem != "prober-health":
        assert {"site", "kind", "check", "location"} <= set(names)
    for variable in names.values():
        if variable["type"] == "query":
            assert variable["query"].startswith("SHOW TAG VALUES FROM ")
            assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".*"
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):  # text panels have none
            query = target["query"]
            for name in set(names) - {"datasource"}:
                if f"${name}" in query:  # filters are anchored regexes, as multi-value needs
                    assert f"/^${name}$/" in query, (panel["title"], name)


def test_check_command_passes_on_the_shipped_dashboards():
    done = subprocess.run([sys.executable, "grafana/check.py"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "5 dashboard(s) OK" in done.stdout


def test_dashboard_uids_are_unique():
    problems, status = check_files(DASHBOARDS)
    assert (problems, status) == ([], 0)
    assert len({load(p)["uid"] for p in DASHBOARDS}) == len(DASHBOARDS)


# -- the check fails on broken copies ----------------------------------------------------


@pytest.fixture
def overview() -> dict:
    return load(DASHBOARD_DIR / "overview.json")


def test_overlapping_panels_fail(overview):
    broken = copy.deepcopy(overview)
    broken["panels"][1]["gridPos"] = dict(broken["panels"][0]["gridPos"], x=6)
    problems = check_dashboard(broken, "overview.json")
    assert any("overlaps" in p and '"Now: banks × capabilities (worst location)"' in p for p in problems), problems


def test_duplicate_panel_id_fails(overview):
    broken = copy.deepcopy(overview)
    broken["panels"][2]["id"] = broken["panels"][0]["id"]
    problems = check_dashboard(broken, "overview.json")
    assert any(f"duplicate panel id {broken['panels'][0]['id']}" in p for p in problems), problems


def test_hard_coded_datasource_fails(overview):
    broken = copy.deepcopy(overview)
    broken["panels"][0]["datasource"] = {"type": "influxdb", "uid": "P951FEA4DE68E13C5"}
    broken["panels"][1]["targets"][0]["datasource"] = {"type": "influxdb", "uid": "P951FEA4DE68E13C5"}
    problems = check_dashboard(broken, "overview.json")
    assert sum("datasource must be" in p and "P951FEA4DE68E13C5" in p for p in problems) == 2, problems


def test_other_structural_breakages_fail(overview):
    cases = {
        "past the 24-column grid": lambda d: d["panels"][0]["gridPos"].update(x=20, w=12),
        "gridPos must have integer": lambda d: d["panels"][0].pop("gridPos"),
        "schemaVersion must be": lambda d: d.update(schemaVersion=27),
        "uid must be": lambda d: d.pop("uid"),
        "title is missing": lambda d: d.update(title=""),
        "uses $bank, which is not a template variable": lambda d: first_query_panel(d)["targets"][0].update(
            query='SELECT mean("success") FROM "check" WHERE "site" =~ /^$bank$/ AND $timeFilter'),
        "the query is empty": lambda d: first_query_panel(d)["targets"][0].update(query="  "),
        "does not filter on $timeFilter": lambda d: first_query_panel(d)["targets"][0].update(
            query='SELECT mean("success") FROM "check"'),
        "should use $__interval": lambda d: d["panels"][3]["targets"][0].update(
            query=d["panels"][3]["targets"][0]["query"].replace("$__interval", "1m")),
        "without fill(...)": lambda d: d["panels"][3]["targets"][0].update(
            query=d["panels"][3]["targets"][0]["query"].replace(" fill(none)", "")),
        "rawQuery must be true": lambda d: first_query_panel(d)["targets"][0].update(rawQuery=False),
        'no "datasource" template variable': lambda d: d["templating"].update(
            list=[v for v in d["templating"]["list"] if v["name"] != "datasource"]),
        "variable $kind: the query is empty": lambda d: next(
            v for v in d["templating"]["list"] if v["name"] == "kind").update(query=""),
        'annotation "Incidents": datasource must be': lambda d: d["annotations"]["list"][1].update(
            datasource={"type": "influxdb", "uid": "abc"}),
    }
    for expected, breakage in cases.items():
        broken = copy.deepcopy(overview)
        breakage(broken)
        problems = check_dashboard(broken, "overview.json")
        assert any(expected in p for p in problems), (expected, problems)


def test_check_command_fails_with_clear_messages(tmp_path, overview):
    broken = copy.deepcopy(overview)
    broken["panels"][2]["id"] = broken["panels"][0]["id"]
    broken["panels"][1]["datasource"] = {"type": "influxdb", "uid": "my-influx"}
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps(broken))
    not_json = tmp_path / "not-json.json"
    not_json.write_text('{"uid": ')
    done = subprocess.run(
        [sys.executable, str(ROOT / "grafana" / "check.py"), str(bad)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert f"{bad}: panel {broken['panels'][0]['id']}" in done.stderr and "duplicate panel id" in done.stderr
    assert "datasource must be" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "grafana.check", str(not_json)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 2 and "not valid JSON" in done.stderr and "Traceback" not in done.stderr


# -- Grafana's macro and variable expansion ----------------------------------------------


def test_multi_value_variables_become_escaped_alternations():
    site = Variable("site", ["bank.fr", "a/b", "c(d)"], multi=True, include_all=True, all_value=".*")
    assert expand('"site" =~ /^$site$/', {"site": site}) == r'"site" =~ /^(bank\.fr|a\/b|c\(d\))$/'
    one = Variable("site", ["bank.fr"], multi=True, include_all=True)
    assert expand('"site" =~ /^${site}$/', {"site": one}) == r'"site" =~ /^bank\.fr$/'
    plain = Variable("site", "bank.fr")  # neither multi nor include-All: inserted as is
    assert expand("[[site]]", {"site": plain}) == "bank.fr"
    assert escape_regex(r"a\b^$*+?.()|[]{}/") == r"a\\b\^\$\*\+\?\.\(\)\|\[\]\{\}\/"


def test_all_uses_the_all_value_or_every_option():
    custom = Variable("kind", ALL, multi=True, include_all=True, all_value=".*", options=["login"])
    assert expand("/^$kind$/", {"kind": custom}) == "/^.*$/"
    joined = Variable("kind", ALL, multi=True, include_all=True, options=["login", "transfer"])
    assert expand("/^$kind$/", {"kind": joined}) == "/^(login|transfer)$/"
    with pytest.raises(ValueError, match="no options"):
        expand("$kind", {"kind": Variable("kind", ALL, include_all=True)})


def test_explicit_formats_and_unknown_variables():
    v = {"kind": Variable("kind", ["login", "cards"], multi=True)}
    assert expand("${kind:pipe} ${kind:csv} ${kind:singlequote} ${kind:regex}", v) == (
        "login|cards login,cards 'login','cards' (login|cards)"
    )
    assert expand("$nope and ${nope}", v) == "$nope and ${nope}"


def test_time_filter_relative_and_absolute():
    assert time_filter(TimeRange("now-6h", "now")) == "time >= now() - 6h"
    assert time_filter(TimeRange("now-2d", "now-1d")) == "time >= now() - 2d and time <= now() - 1d"
    assert time_filter(TimeRange(1700000000000, 1700003600000)) == (
        "time >= 1700000000000ms and time <= 1700003600000ms"
    )
    rng = TimeRange("now-1h", "now", now_ms=1700003600000)
    assert expand("$__from $__to $__range_s", time_range=rng) == "1700000000000 1700003600000 3600"


def test_interval_like_grafana():
    assert calculate_interval(3_600_000, 1000, "10s") == "10s"  # 3.6 s rounds to 5 s, floored at 10 s
    assert calculate_interval(3_600_000, 1000, None) == "5s"
    assert calculate_interval(7 * 86_400_000, 1000, "10s") == "10m"
    assert calculate_interval(30 * 86_400_000, 1000, "10s") == "30m"
    assert parse_interval(">10s") == 10_000 and format_interval(90_000) == "90s" and format_interval(3_600_000) == "1h"
    query = "GROUP BY time($__interval) -- $interval $__interval_ms"
    assert expand(query, time_range=TimeRange("now-7d")) == "GROUP BY time(10m) -- 10m 600000"
    assert expand(query, interval="1m") == "GROUP BY time(1m) -- 1m 60000"


def test_variables_of_a_dashboard_default_to_all(overview):
    variables = variables_of(overview, {"site": ["simbank"]})
    assert "datasource" not in variables
    assert variables["site"].value == ["simbank"] and variables["kind"].value == ALL
    query = next(v for v in overview["templating"]["list"] if v["name"] == "check")["query"]
    assert expand(query, variables) == (
        'SHOW TAG VALUES FROM "check" WITH KEY = "check" WHERE "site" =~ /^simbank$/ AND "kind" =~ /^.*$/'
    )


# -- provisioning ------------------------------------------------------------------------


def test_datasource_provisioning():
    text = (PROVISIONING / "datasources" / "influxdb.yaml").read_text()
    for needle in ("apiVersion: 1", "type: influxdb", "uid: bank-prober-influxdb", "url: ${BANK_PROBER_INFLUX_URL}",
                   "dbName: ${BANK_PROBER_INFLUX_DB}", "user: ${BANK_PROBER_INFLUX_USER}",
                   "password: ${BANK_PROBER_INFLUX_PASSWORD}", "version: InfluxQL", "influx v1 dbrp create",
                   "Authorization", "3.x"):
        assert needle in text, needle
    _yaml_if_available(text)


def test_dashboard_provisioning():
    text = (PROVISIONING / "dashboards" / "bank-prober.yaml").read_text()
    for needle in ("apiVersion: 1", "type: file", "folder: Bank prober", "path: /var/lib/grafana/dashboards"):
        assert needle in text, needle
    _yaml_if_available(text)


def _yaml_if_available(text: str) -> None:
    try:
        import yaml
    except ImportError:  # PyYAML is not a dependency; the text checks above still ran
        return
    data = yaml.safe_load(text)
    assert data["apiVersion"] == 1
