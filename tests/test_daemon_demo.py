"""``prober demo`` as a subprocess: without a terminal, on a pseudo-terminal, on SIGTERM."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.exclusive  # the demo's 3-second tours, journeys with 0.5 s budgets and a 10 s stop

API_CHECKS = ("login", "accounts", "transfer", "cards", "card-authorisation")
"""The embedded default's checks that are not browser checks."""


def _api_only(directory: Path) -> Path:
    """The embedded default with its browser checks disabled, for the tests not about
    them: Chromium is four fifths of a demo's CPU (19.5 s against 3.3 s for a 21 s demo)."""
    from prober.defaults import default_config
    from tests.browser_helpers import only_checks

    config = directory / "api-only.toml"
    config.write_text(only_checks(default_config().read_text(), API_CHECKS))
    return config


def test_the_api_only_default_keeps_every_api_check_and_no_browser_check(tmp_path: Path) -> None:
    from prober.defaults import default_config
    from prober.loading import load

    whole = load(default_config()).plans
    api = load(_api_only(tmp_path)).plans
    assert [p.check for p in api] == [p.check for p in whole if p.browser is None] == list(API_CHECKS)
    assert len(whole) > len(api)


def _demo(tmp_path: Path, *args: str, timeout: float = 40.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prober", "demo", "--port", "0", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=timeout,
    )


def test_demo_without_a_tty_prints_plain_summaries(tmp_path: Path) -> None:
    # A run every second, so each journey's budget is a second: a summary shows each
    # check's last run, and a transfer (it polls until the payment settles) slowed past a
    # half-second budget on a loaded machine is not what this test is about.
    done = _demo(tmp_path, "--duration", "6", "--interval", "1", "--scenario", "none")
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.match(r"Status page: http://127\.0\.0\.1:\d+/ ", out), out[:500]  # the first line
    assert "simulated bank at http://127.0.0.1:" in out
    assert "Scenario: none (a quiet bank)." in out
    for check, kind in [("login", "login"), ("accounts", "accounts"), ("transfer", "transfer"),
                        ("cards", "cards"), ("card-authorisation", "payments")]:
        assert f"simbank/{check} ({kind}): ok" in out, out[-3000:]
    # The embedded default's browser checks run too (every 6 s at the least: one run each
    # at most in 6 s, the one still running at the stop shown waiting), and none fails.
    web = dict(re.findall(r"^  simbank/(web-\w+) \(\w+\): (\w+)", out.split("\n[")[-1], re.MULTILINE))
    assert sorted(web) == ["web-accounts", "web-cards", "web-login", "web-transfer"], out[-3000:]
    assert set(web.values()) <= {"ok", "waiting"} and "ok" in web.values(), out[-3000:]
    # Isolated: nothing of the demo stays where a later `prober run` would find it.
    assert not (tmp_path / "var").exists(), sorted(p.name for p in tmp_path.rglob("*"))
    assert "Traceback" not in done.stderr


def test_demo_ignores_influxdb_and_state_of_the_config_it_runs(tmp_path: Path) -> None:
    """A config with [influxdb] and a state_dir: the demo writes to neither."""
    config = tmp_path / "with-influx.toml"
    config.write_text(_api_only(tmp_path).read_text() + """
[influxdb]
url = "http://127.0.0.1:9"
api = "v1"
database = "prod"

[daemon]
state_dir = "prod-state"
health_listen = ""
""")
    done = _demo(tmp_path, "-c", str(config), "--duration", "3", "--interval", "1", "--scenario", "none")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "simbank/accounts (accounts): ok" in done.stdout, done.stdout[-2000:]
    assert "127.0.0.1:9" not in done.stderr  # never tried the configured InfluxDB
    assert not (tmp_path / "prod-state").exists() and not (tmp_path / "var").exists()


def test_demo_shows_an_incident_open_on_its_capability_then_resolved(tmp_path: Path) -> None:
    """zero-balances: accounts answer 200 with wrong data from 5 s to 15 s of the cycle."""
    done = _demo(tmp_path, "-c", str(_api_only(tmp_path)), "--duration", "21", "--interval", "0.5",
                 "--scenario", "zero-balances", timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = done.stdout.split("\n[")
    during = [s for s in summaries if "OPEN simbank/accounts since" in s]
    assert during, done.stdout[-4000:]
    assert re.search(r"simbank: login ok, accounts outage, transfer ok", during[0]), during[0]
    assert "fails at balances (assertion)" in during[0]
    assert "RESOLVED simbank/accounts" in summaries[-1], summaries[-1]
    assert "OPEN" not in summaries[-1]
    assert not [line for line in done.stdout.splitlines() if "OPEN" in line and "accounts" not in line]


def test_demo_scenario_reaches_the_bank(tmp_path: Path) -> None:
    done = _demo(tmp_path, "--scenario", "nope", timeout=20)
    assert done.returncode == 2 and "unknown scenario 'nope'" in done.stderr
    from prober.simbank import SCENARIOS

    name = next(iter(SCENARIOS))
    done = _demo(tmp_path, "-c", str(_api_only(tmp_path)), "--duration", "2", "--interval", "0.5", "--scenario", name)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Scenario: {name} (played every " in done.stdout


def test_demo_live_view_on_a_terminal_and_sigterm(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "prober", "demo", "-c", str(_api_only(tmp_path)), "--port", "0", "--interval", "0.4",
         "--time-scale", "1"],
        cwd=tmp_path, stdin=slave, stdout=slave, stderr=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "160", "LINES": "40", "TERM": "xterm"},
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 40
    try:
        # The tour's first incident, printed above the live grid, and a frame of the grid
        # with a capability OK and a login that passed: 30 % of logins fail, so the
        # incident may open (three failures) before any frame showed a passed login.
        wanted = (b"incident opened: simbank/login", "● OK".encode(), b"login ok")
        while time.monotonic() < deadline and not all(marker in output for marker in wanted):
            try:
                output += os.read(master, 65536)
            except OSError:
                break
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = output.decode(errors="replace")
    assert code == 0, text[-2000:]
    assert "bank-prober demo" in text and "capability × bank" in text and "payments" in text
    assert "● OK" in text and "login ok" in text, text[-3000:]
    assert "bank: intermittent-login: 30 % of logins fail" in text
    assert "incident opened: simbank/login: check login fails at" in text


def test_demo_default_is_a_tour_of_the_scenarios_each_capability_in_turn(tmp_path: Path) -> None:
    """The tour at 5 times the default pace (a run every 0.4 s, an hour in 1 s): each stop
    of the tour opens its capabilities' incidents and resolves them before the next stop,
    then the demo ends by itself with one line on what it kept."""
    from prober.daemon.demo import NO_DATABASE
    from prober.simbank.scenarios import CAPABILITIES, SCENARIOS, tour_stops

    done = _demo(tmp_path, "--interval", "0.4", "--time-scale", "1", timeout=150)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.match(r"Status page: http://127\.0\.0\.1:\d+/ ", out), out[:500]
    assert "Scenario: tour (played once, 44s)." in out
    events = re.findall(r"^\[[\d:]{8}\] incident (opened|resolved): simbank/(\w+)", out, re.MULTILINE)
    stops = [sorted(c for c in CAPABILITIES if c in stop.capabilities) for stop in tour_stops(SCENARIOS)]
    assert [kinds for kinds in stops] == [["login"], ["accounts"], ["cards", "transfer"], ["payments"]]
    expected = [(event, kind) for kinds in stops for event in ("opened", "resolved") for kind in kinds]
    in_turn = [(event, kind) for group in _stop_groups(events, stops) for event, kind in group]
    assert in_turn == expected, "\n".join(line for line in out.splitlines() if "] " in line)
    bank_lines = re.findall(r"^\[[\d:]{8}\] bank: (\S+?):", out, re.MULTILINE)
    assert bank_lines == [stop.name for stop in tour_stops(SCENARIOS)]
    assert "The tour is over: 5 incidents opened, 5 resolved." in out
    assert out.splitlines()[-1] == NO_DATABASE
    assert "Traceback" not in done.stderr and "WARNING" not in done.stderr, done.stderr[-2000:]


def _stop_groups(events: list[tuple[str, str]], stops: list[list[str]]) -> list[list[tuple[str, str]]]:
    """``events`` cut in the tour's order: each stop's openings, then its resolutions
    (sorted within each, since a stop's capabilities fail together)."""
    groups, at = [], 0
    for kinds in stops:
        for _ in ("opened", "resolved"):
            groups.append(sorted(events[at:at + len(kinds)]))
            at += len(kinds)
    return groups + ([events[at:]] if events[at:] else [])


def test_demo_stop_says_it_wrote_to_no_database(tmp_path: Path) -> None:
    """Instead of the daemon's warning about points left in its spool: one plain line."""
    from prober.daemon.demo import NO_DATABASE

    done = subprocess.run(
        [sys.executable, "-m", "prober", "--log-level", "info", "demo", "-c", str(_api_only(tmp_path)), "--port", "0",
         "--scenario", "none",
         "--duration", "3", "--interval", "0.5"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "INFO" in done.stderr and "prober stopped:" in done.stderr  # the level is info: the daemon's lines show
    assert "in the spool" not in done.stderr and "WARNING" not in done.stderr, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == NO_DATABASE
    assert NO_DATABASE == ("The demo writes to no database: its results and incidents were kept in a temporary "
                           "directory, removed as it ended.")


@pytest.mark.parametrize(("command", "default"), [("demo", "tour"), ("bank", "none")])
def test_help_lists_every_scenario_from_the_table(command: str, default: str) -> None:
    from prober.simbank.scenarios import PLAYABLE

    done = subprocess.run([sys.executable, "-m", "prober", command, "--help"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    listing = done.stdout.split("scenarios (--scenario NAME):\n", 1)[1]
    names = re.findall(r"^  (\S+)", listing, re.MULTILINE)
    assert names == ["none", *PLAYABLE]
    assert list(PLAYABLE)[:2] == ["tour", "transfers-and-cards-down"]
    assert re.search(rf"^  {default} \(default\) ", listing, re.MULTILINE), listing
    for name, scenario in PLAYABLE.items():
        first_words = " ".join(scenario.description.split()[:4])
        assert re.search(rf"^  {re.escape(name)}(?: \(default\))? +{re.escape(first_words)}", listing, re.MULTILINE)


def test_demo_over_https_shows_the_certificate_warning_ladder(tmp_path: Path) -> None:
    """``--tls-cert-days 5``: the bank's certificate expires in 5 days, the 7-day step of
    the default ladder; an expired one (``-2``) fails every API check's handshake."""
    api_only = str(_api_only(tmp_path))
    done = _demo(tmp_path, "-c", api_only, "--duration", "5", "--interval", "0.5", "--scenario", "none",
                 "--tls-cert-days", "5")
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.match(r"Status page: http://127\.0\.0\.1:\d+/ ", out), out[:500]
    assert "simulated bank at https://127.0.0.1:" in out
    assert "The simulated bank serves HTTPS with a certificate that expires " in out and ", in 5 days." in out
    assert re.search(r"certificate warning: simbank: server certificate of 127\.0\.0\.1 "
                     r"\(CN=simbank\.localhost,O=Simulated Bank \(test\)\) expires in 5 days, on ", out), out[-3000:]
    assert "simbank/login (login): ok" in out  # verified against the demo's CA: the service works
    assert "simbank: login ok, accounts ok" in out  # a warning is no capability's state
    expired = _demo(tmp_path, "-c", api_only, "--duration", "4", "--interval", "0.5", "--scenario", "none",
                    "--tls-cert-days", "-2")
    assert expired.returncode == 0, expired.stderr[-3000:]
    assert "certificate verify failed: certificate has expired" in expired.stdout, expired.stdout[-3000:]
