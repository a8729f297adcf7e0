"""``/metrics`` over a real socket, against the simulated bank: the values, their names and
labels, the histogram's consistency, a reload while scraping, InfluxDB down."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from prober.access import AccessGate
from prober.daemon.health import HealthServer
from prober.daemon.histogram import JOURNEY_BUCKETS, Histogram
from prober.daemon.service import ProberService
from prober.loading import load
from prober.simbank import BankServer, Fault
from prober.writer.writer import ResultWriter
from tests.daemon_helpers import check, config_text, wait_for
from tests.fixtures.servers import free_port
from tests.metrics_helpers import Samples, parse, scrape, value


async def get_metrics(url: str) -> Samples:
    return parse((await asyncio.to_thread(scrape, url))[1])


def start_service(tmp_path: Path, text: str) -> ProberService:
    """A service of ``text``; without an ``[influxdb]`` section, a writer to a spool only."""
    path = tmp_path / "prober.toml"
    path.write_text(text)
    loaded = load(path)
    writer = ResultWriter(None, spool_dir=tmp_path / "spool") if loaded.config.influxdb is None else None
    return ProberService(loaded, writer=writer)


async def test_metrics_of_a_failing_capability(bank: BankServer, tmp_path: Path) -> None:
    bank.faults.set("accounts", Fault(mode="down"))
    service = start_service(tmp_path, config_text(
        bank.url, [check("login", interval="300ms"), check("accounts", interval="300ms")],
        daemon={"state_dir": str(tmp_path / "state")}))
    health = HealthServer(service, "127.0.0.1", 0)
    await health.start()
    try:
        await service.start()

        async def incident_open() -> bool:
            samples = await get_metrics(health.url)
            return value(samples, "bank_prober_incidents_open", site="simbank", kind="accounts") == 1

        await wait_for(incident_open, timeout=20, what="the accounts incident in /metrics")
        content_type, text = await asyncio.to_thread(scrape, health.url)
        assert content_type.startswith("text/plain; version=0.0.4")
        samples = parse(text)
        login = {"site": "simbank", "check": "login", "kind": "login", "location": "local"}
        accounts = {**login, "check": "accounts", "kind": "accounts"}
        assert value(samples, "bank_prober_check_success", **login) == 1
        assert value(samples, "bank_prober_check_success", **accounts) == 0
        assert value(samples, "bank_prober_check_consecutive_failures", **accounts) >= 3
        assert value(samples, "bank_prober_check_interval_seconds", **login) == 0.3
        assert value(samples, "bank_prober_check_runs_total", **accounts, outcome="http_status") >= 3
        assert value(samples, "bank_prober_check_runs_total", **accounts, outcome="ok") == 0
        failures = value(samples, "bank_prober_check_failures_total", **accounts)
        assert failures == value(samples, "bank_prober_check_runs_total", **accounts, outcome="http_status")
        assert value(samples, "bank_prober_check_failures_total", **login) == 0
        # The phases of the last run add up to (about) its duration; the first step's DNS
        # and connect are there (a journey opens its own connection).
        phases = {lbl["phase"]: v for lbl, v in samples["bank_prober_check_phase_duration_seconds"]
                  if lbl["check"] == "login"}
        assert set(phases) == {"dns", "connect", "tls", "ttfb", "transfer"}
        assert phases["connect"] > 0 and phases["ttfb"] > 0 and phases["tls"] == 0
        assert sum(phases.values()) <= value(samples, "bank_prober_check_duration_seconds", **login) + 1e-3
        assert value(samples, "bank_prober_capability_state", site="simbank", kind="accounts", state="outage") == 1
        assert value(samples, "bank_prober_capability_state", site="simbank", kind="accounts", state="ok") == 0
        assert value(samples, "bank_prober_capability_state", site="simbank", kind="login", state="ok") == 1
        assert value(samples, "bank_prober_incidents_open", site="simbank", kind="login") == 0
        # The histogram: cumulative buckets, +Inf = count = executed runs of the capability.
        buckets = [(lbl["le"], v) for lbl, v in samples["bank_prober_journey_duration_seconds_bucket"]
                   if lbl["kind"] == "login"]
        assert [le for le, _ in buckets] == [*(repr(b) for b in JOURNEY_BUCKETS), "+Inf"]
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)
        count = value(samples, "bank_prober_journey_duration_seconds_count", kind="login")
        assert buckets[-1][1] == count >= value(samples, "bank_prober_check_runs_total", **login, outcome="ok") - 1
        assert value(samples, "bank_prober_journey_duration_seconds_sum", kind="login") > 0
        # The prober's own figures.
        assert value(samples, "bank_prober_scheduling") == 1
        assert value(samples, "bank_prober_checks") == 2
        finished = failures + value(samples, "bank_prober_check_runs_total", **login, outcome="ok")
        started = value(samples, "bank_prober_runs_started_total")
        assert finished <= started <= finished + 2  # (one run of each check may be in flight)
        assert value(samples, "bank_prober_schedule_lag_seconds_count") == value(
            samples, "bank_prober_runs_started_total")
        assert value(samples, "bank_prober_writer_healthy") == 1
        assert value(samples, "bank_prober_runs_not_started_total", reason="lockout") == 0
        assert value(samples, "bank_prober_config_last_reload_successful") == 1
        assert value(samples, "bank_prober_info", prober_instance=service.loaded.config.prober.instance) == 1
        assert value(samples, "process_resident_memory_bytes") > 0
        # Names and labels follow the conventions; nothing unbounded is a label.
        for name, series in samples.items():
            assert re.fullmatch(r"(bank_prober|process)_[a-z0-9_]+", name), name
            for labels, _ in series:
                assert set(labels) <= {"site", "check", "kind", "location", "outcome", "phase", "state", "le",
                                       "reason", "result", "prober_instance", "version"}, (name, labels)
        assert bank.url not in text and "s3cret-pw" not in text and "HTTP 503" not in text

        # The text format whatever the scraper accepts (Prometheus asks for OpenMetrics first).
        content_type, again = await asyncio.to_thread(
            scrape, health.url, "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
        assert content_type.startswith("text/plain; version=0.0.4") and "# EOF" not in again
    finally:
        await service.stop(grace=0.0)
        await health.stop()


async def test_a_scrape_during_a_reload_sees_the_old_or_the_new_checks(bank: BankServer, tmp_path: Path) -> None:
    """The snapshot is taken in one go on the event loop, where a reload swaps the checks
    in one go: each scrape shows one configuration's checks, never a mix."""
    old = [check("login", name=f"old-{i}", interval="1s") for i in range(30)]
    new = [check("login", name=f"new-{i}", interval="1s") for i in range(30)]
    daemon = {"state_dir": str(tmp_path / "state")}
    unlimited = "\n[access]\nrate_limit = 0\n"  # two scrapers as fast as they can: no 429 from the rate limit
    service = start_service(tmp_path, config_text(bank.url, old, daemon=daemon) + unlimited)
    health = HealthServer(service, "127.0.0.1", 0, gate=AccessGate(service.loaded.config.access))
    await health.start()
    try:
        await service.start()
        path = tmp_path / "prober.toml"
        seen: list[set[str]] = []
        done = asyncio.Event()

        async def scrape_until_done() -> None:
            while not done.is_set():
                samples = await get_metrics(health.url)
                seen.append({lbl["check"][:3] for lbl, _ in samples["bank_prober_check_interval_seconds"]})

        scraping = [asyncio.create_task(scrape_until_done()) for _ in range(2)]
        for turn in range(6):
            await asyncio.sleep(0.1)
            path.write_text(config_text(bank.url, new if turn % 2 == 0 else old, daemon=daemon) + unlimited)
            service.reload(await asyncio.to_thread(load, path))
        await asyncio.sleep(0.1)
        done.set()
        await asyncio.gather(*scraping)
        assert len(seen) >= 6
        assert all(prefixes in ({"old"}, {"new"}) for prefixes in seen), seen
        assert {"old"} in seen and {"new"} in seen
        samples = await get_metrics(health.url)
        assert value(samples, "bank_prober_config_reloads_total") == 6
        assert len(samples["bank_prober_check_interval_seconds"]) == 30
    finally:
        await service.stop(grace=0.0)
        await health.stop()


async def test_metrics_while_influxdb_is_down(bank: BankServer, tmp_path: Path) -> None:
    """Nothing listens where InfluxDB should be: /metrics still answers at once, and says
    so (writer unhealthy, errors counted, points waiting in the spool)."""
    port = free_port()
    service = start_service(tmp_path, config_text(
        bank.url, [check("login", interval="200ms")],
        daemon={"state_dir": str(tmp_path / "state")},
        influxdb={"url": f"http://127.0.0.1:{port}", "api": "v1", "database": "prober",
                  "flush_interval": "100ms", "spool_dir": str(tmp_path / "spool")}))
    health = HealthServer(service, "127.0.0.1", 0)
    await health.start()
    try:
        await service.start()

        async def unhealthy() -> bool:
            samples = await get_metrics(health.url)
            return (value(samples, "bank_prober_writer_healthy") == 0
                    and value(samples, "bank_prober_writer_spooled_points") > 0)

        await wait_for(unhealthy, timeout=20, what="the writer to report InfluxDB down")
        samples = await get_metrics(health.url)
        assert value(samples, "bank_prober_writer_errors_total") >= 1
        assert value(samples, "bank_prober_writer_written_points_total") == 0
        assert value(samples, "bank_prober_check_success", check="login") == 1  # probing goes on
    finally:
        await service.stop(grace=0.0)
        await health.stop()


def test_histogram_buckets_are_upper_bounds_inclusive() -> None:
    histogram = Histogram((0.1, 1.0))
    for observed in (0.05, 0.1, 0.5, 1.0, 7.0):
        histogram.observe(observed)
    assert histogram.cumulative() == [("0.1", 2), ("1.0", 4), ("+Inf", 5)]
    assert histogram.count == 5 and abs(histogram.total - 8.65) < 1e-9
    snapshot = histogram.copy()
    histogram.observe(0.2)
    assert snapshot.count == 5 and histogram.count == 6
