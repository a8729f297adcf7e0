"""A real Prometheus (Debian's ``prometheus``) scrapes a real ``prober run`` probing the
simulated bank with a known fault, evaluates the shipped alert rules, and answers PromQL
through its HTTP API with what the fault means: which bank, which capability."""

from __future__ import annotations

import asyncio
import math
import signal
from pathlib import Path

import pytest

from benchmarks.support import free_port_run
from prober.simbank import BankServer, Fault
from tests.daemon_helpers import ProberProcess, check, config_text, wait_for
from tests.fixtures.servers import PrometheusServer, free_port

pytestmark = pytest.mark.servers

RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "alerts.yml"


@pytest.mark.exclusive  # a login's p99 on loopback held to its first buckets
async def test_prometheus_scrapes_the_prober_and_sees_the_fault(bank: BankServer, tmp_path: Path) -> None:
    bank.faults.set("accounts", Fault(mode="down"))
    health = free_port()
    dead_influxdb = free_port()  # nothing listens there: InfluxDB is down for the whole test
    (tmp_path / "prober.toml").write_text(
        '[prober]\ninstance = "probe-1"\nlocation = "paris"\n' + config_text(
            bank.url, [check("login", interval="500ms"), check("accounts", interval="500ms")],
            daemon={"health_listen": f"127.0.0.1:{health}", "state_dir": "state"},
            influxdb={"url": f"http://127.0.0.1:{dead_influxdb}", "api": "v1", "database": "prober",
                      "flush_interval": "200ms", "spool_dir": "spool"}))
    prober = await ProberProcess(["run", "-c", "prober.toml"], tmp_path).start()
    prometheus = PrometheusServer([f"127.0.0.1:{health}"], interval=1.0, rule_files=[RULES],
                                  workdir=tmp_path / "prometheus")
    try:
        await asyncio.to_thread(prometheus.start)  # raises (the test fails) when it cannot start

        def query(promql: str) -> list[tuple[dict[str, str], float]]:
            return prometheus.query(promql)

        async def outage_seen() -> bool:
            found = await asyncio.to_thread(
                query, 'bank_prober_capability_state{site="simbank",kind="accounts",state="outage"} == 1')
            return len(found) == 1

        await wait_for(outage_seen, timeout=45, interval=0.5, what="Prometheus to see the accounts outage")
        # Let a few more scrapes land, for the rates.
        await asyncio.sleep(4)

        (up,) = await asyncio.to_thread(query, 'up{job="bank-prober"}')
        assert up[1] == 1 and up[0]["instance"] == f"127.0.0.1:{health}"
        success = dict((lbl["check"], v) for lbl, v in await asyncio.to_thread(
            query, 'bank_prober_check_success{site="simbank"}'))
        assert success == {"login": 1.0, "accounts": 0.0}
        outcomes = dict((lbl["outcome"], v) for lbl, v in await asyncio.to_thread(
            query, 'sum by (outcome) (bank_prober_check_runs_total{check="accounts"})'))
        assert outcomes["http_status"] >= 3 and outcomes["ok"] == 0
        (rate,) = await asyncio.to_thread(query, 'rate(bank_prober_check_failures_total{check="accounts"}[5s])')
        assert 0.5 <= rate[1] <= 4.0  # a run every 500 ms, all failing
        states = {lbl["kind"]: lbl["state"] for lbl, v in await asyncio.to_thread(
            query, 'bank_prober_capability_state{site="simbank"} == 1')}
        assert states == {"login": "ok", "accounts": "outage"}
        (p99,) = await asyncio.to_thread(
            query, 'histogram_quantile(0.99, sum by (le) (rate(bank_prober_journey_duration_seconds_bucket'
                   '{site="simbank",kind="login",location="paris"}[10s])))')
        # A finite quantile in the buckets of a loopback login: one login slowed by a loaded
        # machine moves the p99 of a dozen runs up a bucket (0.25 s), not to a timeout's.
        assert 0 < p99[1] <= 0.5 and not math.isnan(p99[1])
        (info,) = await asyncio.to_thread(query, "bank_prober_info")
        assert (info[0]["prober_instance"], info[0]["location"]) == ("probe-1", "paris")
        # InfluxDB is down: the writer says so, the points wait in the spool, nothing is dropped.
        writer = {name: (await asyncio.to_thread(query, name))[0][1] for name in (
            "bank_prober_writer_healthy", "bank_prober_writer_spooled_points", "bank_prober_writer_errors_total",
            "bank_prober_writer_dropped_points_total")}
        assert writer["bank_prober_writer_healthy"] == 0 and writer["bank_prober_writer_spooled_points"] > 0
        assert writer["bank_prober_writer_errors_total"] >= 1 and writer["bank_prober_writer_dropped_points_total"] == 0
        # The shipped rules, evaluated by this Prometheus on these series: the capability's
        # alert is pending (its `for` is longer than the test), and only for accounts.
        alerts = {(lbl["alertname"], lbl.get("site"), lbl.get("kind")) for lbl, _ in await asyncio.to_thread(
            query, 'ALERTS{alertname=~"BankCapability.*"}')}
        assert alerts == {("BankCapabilityDown", "simbank", "accounts")}

        prober.signal(signal.SIGTERM)
        assert await prober.wait(30) == 0
    finally:
        await prober.kill()
        await asyncio.to_thread(prometheus.close)


async def test_each_worker_is_a_scrape_target_of_its_own_sites(bank: BankServer, tmp_path: Path) -> None:
    """``--workers 2``: the supervisor answers /healthz on health_listen, each worker serves
    /metrics on its own port; Prometheus scraping both sees every site exactly once."""
    port = free_port_run(3)
    sites = [f"bank-{c}" for c in "abcdef"]
    text = config_text(bank.url, [check("login", interval="500ms")],
                       daemon={"health_listen": f"127.0.0.1:{port}", "state_dir": "state"}, site=sites[0])
    site_block = text[text.index("[[sites]]"):]
    text += "".join("\n" + site_block.replace(f'name = "{sites[0]}"', f'name = "{name}"', 1) for name in sites[1:])
    (tmp_path / "prober.toml").write_text(text)
    prober = await ProberProcess(["run", "-c", "prober.toml", "--workers", "2"], tmp_path).start()
    targets = [f"127.0.0.1:{port + k}" for k in (1, 2)]
    prometheus = PrometheusServer(targets, interval=1.0, workdir=tmp_path / "prometheus")
    try:
        await asyncio.to_thread(prometheus.start)

        async def every_site_scraped() -> bool:
            found = await asyncio.to_thread(prometheus.query, "bank_prober_check_success")
            return len(found) == len(sites)

        await wait_for(every_site_scraped, timeout=45, interval=0.5, what="every site's series from the workers")
        per_site = await asyncio.to_thread(prometheus.query, "count by (site) (bank_prober_check_interval_seconds)")
        assert sorted(labels["site"] for labels, _ in per_site) == sites and {n for _, n in per_site} == {1.0}
        per_target = dict((labels["instance"], n) for labels, n in await asyncio.to_thread(
            prometheus.query, 'count by (instance) (bank_prober_check_interval_seconds)'))
        assert set(per_target) == set(targets) and sum(per_target.values()) == len(sites)
        instances = {labels["prober_instance"] for labels, _ in await asyncio.to_thread(
            prometheus.query, "bank_prober_info")}
        assert len(instances) == 2 and all(name.endswith(("-w1", "-w2")) for name in instances)
        prober.signal(signal.SIGTERM)
        assert await prober.wait(30) == 0
    finally:
        await prober.kill()
        await asyncio.to_thread(prometheus.close)


async def test_prometheus_sees_certificate_expiry_and_the_shipped_alert_fires(tmp_path: Path) -> None:
    """The simulated bank over HTTPS with a certificate expiring in 2 days, the prober's own
    client certificate expiring in 10: both in ``bank_prober_certificate_expiry_timestamp_seconds``,
    and the shipped ``BankCertificateExpiringSoon`` (no ``for``) fires for the bank's only."""
    from prober.simbank.tls import bank_certificate
    from tests.certificates import days, root, write

    served = bank_certificate(2)
    context = served.server_context(tmp_path / "bank-tls")
    ca_file = served.write_ca(tmp_path / "bank-tls")
    own = root("Own CA").issue("prober-qwac", client=True, not_after=days(10))
    client = write(tmp_path / "qwac.pem", own.cert_pem, own.key_pem)
    health = free_port()
    async with BankServer(ssl_context=context) as bank:
        text = config_text(bank.url, [check("login", interval="500ms")],
                           daemon={"health_listen": f"127.0.0.1:{health}", "state_dir": "state"})
        text = text.replace("[sites.vars]", f'[sites.tls]\nca_file = "{ca_file}"\ncert_file = "{client}"\n'
                                            "[sites.vars]", 1)
        (tmp_path / "prober.toml").write_text(text + '\n[certificates]\ncheck_every = "1s"\n')
        prober = await ProberProcess(["run", "-c", "prober.toml"], tmp_path).start()
        prometheus = PrometheusServer([f"127.0.0.1:{health}"], interval=1.0, rule_files=[RULES],
                                      workdir=tmp_path / "prometheus")
        try:
            await asyncio.to_thread(prometheus.start)

            async def both_seen() -> bool:
                found = await asyncio.to_thread(prometheus.query, "bank_prober_certificate_expiry_timestamp_seconds")
                return len(found) == 2

            await wait_for(both_seen, timeout=45, interval=0.5, what="Prometheus to see both certificates")
            expiry = {labels["certificate"]: value for labels, value in await asyncio.to_thread(
                prometheus.query, 'bank_prober_certificate_expiry_timestamp_seconds{site="simbank"}')}
            assert expiry["client"] == own.not_after
            assert abs(expiry["server:127.0.0.1"] - served.not_after.timestamp()) < 1
            days_left = {labels["certificate"]: value for labels, value in await asyncio.to_thread(
                prometheus.query, '(bank_prober_certificate_expiry_timestamp_seconds - time()) / 86400')}
            assert 1.9 < days_left["server:127.0.0.1"] <= 2 and 9.9 < days_left["client"] <= 10

            async def alert_fires() -> bool:
                found = await asyncio.to_thread(
                    prometheus.query, 'ALERTS{alertname="BankCertificateExpiringSoon",alertstate="firing"}')
                return len(found) == 1

            await wait_for(alert_fires, timeout=30, interval=0.5, what="BankCertificateExpiringSoon to fire")
            (firing,) = await asyncio.to_thread(
                prometheus.query, 'ALERTS{alertname=~"BankCertificate.*",alertstate="firing"}')
            assert (firing[0]["site"], firing[0]["certificate"], firing[0]["severity"]) == (
                "simbank", "server:127.0.0.1", "critical")
            pending = await asyncio.to_thread(
                prometheus.query, 'ALERTS{alertname="BankCertificateExpiring",alertstate="pending"}')
            assert {labels["certificate"] for labels, _ in pending} == {"client", "server:127.0.0.1"}
            prober.signal(signal.SIGTERM)
            assert await prober.wait(30) == 0
            assert own.key_pem.decode().splitlines()[2] not in prober.log
        finally:
            await prober.kill()
            await asyncio.to_thread(prometheus.close)
