"""``prober demo``: the simulated bank, the prober and a live view, in one process.

The bank listens on port 8480 (or a free port when it is taken) and plays a
``--scenario``: by default the tour (:data:`~prober.simbank.scenarios.TOUR`: each capability
failing and recovering in turn, once, a few minutes), ``none`` for a quiet bank, or one
of the incident replays, over and over. ``--time-scale`` sets how many real seconds a
simulated hour lasts. The prober runs the embedded default configuration
(:mod:`prober.defaults`, with ``SIMBANK_URL`` set to the bank) with every check's
interval shortened to ``--interval`` seconds (the plans are rebuilt, the file is not
touched). The demo is isolated from any real deployment in the same directory: it
ignores ``[influxdb]`` and ``[[notifiers]]`` (nothing leaves the demo) and keeps its
spool and its state (incidents, lockouts) in a temporary directory removed when it
ends, so a later ``prober run`` never replays simulated-bank results into a real
InfluxDB, nor inherits the demo's incidents; its last line says so.

With ``--tls-cert-days N`` the bank serves HTTPS with a certificate expiring in ``N``
days (negative: expired), from a test CA made for the demo: the API checks trust that CA,
the browser checks do not verify it (Chromium takes no CA file), and the certificate
warning ladder shows in the feed (``certificate warning: …``) and on the status page.

The first line is the status page's address. The view is a grid of site × capability
(``kind``) with each check's status, latency and last error, refreshed with
``rich.live``; without a terminal a plain summary is printed every 5 seconds instead.
Above it, a line for each change of the bank's scenario and each incident opened or
resolved (:class:`DemoFeed`). It runs through the same lifecycle as ``prober run``
(:class:`~prober.daemon.lifecycle.Daemon`): the end of the tour or ``--duration`` stops
the demo by itself, Ctrl-C or SIGTERM stop it cleanly (exit 0), a second one forces the
stop (exit 130), SIGHUP reloads the checks, and the signal handlers in place before are
restored. A config error exits 2.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from prober import eventloop
from prober.config.errors import ConfigError
from prober.daemon.certificates import KIND as CERTIFICATE_KIND
from prober.daemon.lifecycle import Daemon, config_error_lines
from prober.daemon.service import ProberService
from prober.daemon.status import CheckStatus
from prober.defaults import default_config
from prober.incidents import CapabilityState, Incident, IncidentStatus
from prober.journey.plan import JourneyPlan
from prober.loading import LoadedConfig, load
from prober.results import KINDS
from prober.simbank import DEFAULT_TIME_SCALE, TOUR, BankServer, Scenario, ScenarioRunner, scenario_named
from prober.simbank.server import https_context
from prober.timefmt import utc_iso_ns
from prober.waiting import wait_event
from prober.writer.writer import ResultWriter

log = logging.getLogger("prober.demo")

DEMO_GRACE = 10.0
"""Seconds running journeys get to finish when the demo stops: more than a demo browser
journey's timeout (:data:`BROWSER_MIN_INTERVAL`, 6 s) with its evidence and closing, so
that the demo's own end cuts no run (at 5 s, a browser run started just before a
3-second demo's end on a busy machine was cancelled, with the daemon's warning)."""

PLAIN_EVERY = 5.0
"""Seconds between plain summaries when there is no terminal."""

FEED_EVERY = 0.5
"""Seconds between looks at the bank's scenario and the incidents (lines printed as they come)."""

NO_DATABASE = ("The demo writes to no database: its results and incidents were kept in a temporary "
               "directory, removed as it ended.")
"""The demo's last line (instead of the daemon's account of what is left in its spool)."""


def run_demo(
    *,
    config: str | None = None,
    duration: float | None = None,
    scenario: str | None = TOUR,
    interval: float = 2.0,
    port: int = 8480,
    time_scale: float = DEFAULT_TIME_SCALE,
    tls_cert_days: float | None = None,
) -> int:
    try:
        played = scenario_named(scenario)
    except ValueError as exc:
        print(f"prober demo: {exc}", file=sys.stderr)
        return 2
    if interval <= 0:
        print("prober demo: --interval must be greater than zero", file=sys.stderr)
        return 2
    try:
        path = Path(config) if config else default_config()
    except FileNotFoundError as exc:
        print(f"prober demo: {exc}", file=sys.stderr)
        return 2
    return eventloop.run(_demo(path, duration, played, interval, port, time_scale, tls_cert_days))


BROWSER_MIN_INTERVAL = 6.0
"""Seconds between runs of a browser check in the demo, at least: a run of a few pages
in a real browser takes a second or two, more on a busy machine."""


def shorten(interval: float):
    """A plan override giving every check ``interval`` (and a timeout that fits in it);
    browser checks run every ``max(2 × interval, 6 s)``: a few pages in a real browser
    take a second or more of CPU."""

    def override(plan: JourneyPlan) -> JourneyPlan:
        every = max(2 * interval, BROWSER_MIN_INTERVAL) if plan.browser is not None else interval
        return dataclasses.replace(plan, interval=every, timeout=min(plan.timeout, every))

    return override


def trusting(ca_file: Path, inner: Callable[[JourneyPlan], JourneyPlan]) -> Callable[[JourneyPlan], JourneyPlan]:
    """``inner``, then trust the demo bank's test CA: API checks verify its certificate
    against ``ca_file``; browser checks (Chromium takes no CA file) do not verify it."""
    context = ssl.create_default_context(cafile=str(ca_file))

    def override(plan: JourneyPlan) -> JourneyPlan:
        plan = inner(plan)
        if plan.browser is not None:
            return dataclasses.replace(plan, browser=dataclasses.replace(plan.browser, ignore_https_errors=True))
        return dataclasses.replace(plan, ssl_context=context)

    return override


async def _start_bank(port: int, scenario: Scenario | None, time_scale: float,
                      ssl_context: ssl.SSLContext | None = None) -> BankServer:
    bank = BankServer(port=port, scenario=scenario, time_scale=time_scale, ssl_context=ssl_context)
    try:
        await bank.start()
    except OSError:
        bank = BankServer(port=0, scenario=scenario, time_scale=time_scale, ssl_context=ssl_context)
        await bank.start()
    return bank


async def _demo(
    path: Path, duration: float | None, scenario: Scenario | None, interval: float, port: int, time_scale: float,
    tls_cert_days: float | None = None,
) -> int:
    with tempfile.TemporaryDirectory(prefix="bank-prober-demo-") as scratch_dir:
        scratch = Path(scratch_dir)
        https = https_context(tls_cert_days, scratch / "bank-tls") if tls_cert_days is not None else None
        bank = await _start_bank(port, scenario, time_scale, https[0] if https else None)
        try:
            environ = {**os.environ, "SIMBANK_URL": bank.url}
            try:
                loaded = load(path, environ)
            except ConfigError as exc:
                for line in config_error_lines(exc):
                    print(line, file=sys.stderr)
                return 2
            override, note = shorten(interval), ""
            if https is not None:
                override, note = trusting(https[1], override), f"The simulated bank serves {https[2].split(';')[0]}."
            code = await _run_isolated(path, environ, loaded, scratch, bank, interval, duration, override, note)
        finally:
            await bank.stop()
    print(NO_DATABASE, flush=True)
    return code


def isolate(loaded: LoadedConfig, scratch: Path) -> tuple[LoadedConfig, ResultWriter]:
    """``loaded`` with its state under ``scratch``, no InfluxDB nor notifiers, the status
    page on the demo's health port, and a writer spooling under ``scratch`` only."""
    config = loaded.config
    daemon = config.daemon.model_copy(update={
        "state_dir": str(scratch / "state"), "grace_period": min(config.daemon.grace_period, DEMO_GRACE)})
    page = config.status_page.model_copy(update={"enabled": True, "listen": ""})  # on the demo's own health port
    isolated = dataclasses.replace(loaded, config=config.model_copy(
        update={"daemon": daemon, "influxdb": None, "notifiers": [], "status_page": page}))
    return isolated, ResultWriter(None, spool_dir=scratch / "spool", ephemeral=True)


async def _run_isolated(
    path: Path, environ: dict[str, str], loaded: LoadedConfig, scratch: Path, bank: BankServer,
    interval: float, duration: float | None, override: Callable[[JourneyPlan], JourneyPlan] | None = None,
    note: str = "",
) -> int:
    loaded, writer = isolate(loaded, scratch)
    daemon = Daemon(
        path, loaded, environ=environ, health_listen="127.0.0.1:0",
        service_factory=lambda config: ProberService(
            config, writer=writer, plan_override=override or shorten(interval), writer_close_timeout=5.0),
    )
    console = Console()
    feed = DemoFeed(daemon.service, bank.scenario)

    async def live_view() -> None:
        assert daemon.health is not None
        console.print(f"Status page: {daemon.health.url}/  (JSON: {daemon.health.url}/status)",
                      highlight=False, soft_wrap=True)
        console.print(f"bank-prober demo: simulated bank at {bank.url}, every check each {interval:g}s; "
                      f"Ctrl-C to stop", highlight=False, soft_wrap=True, markup=False)
        if note:
            console.print(note, highlight=False, soft_wrap=True, markup=False)
        console.print(_playing(bank.scenario), highlight=False, soft_wrap=True, markup=False)
        await _view(daemon.service, console, daemon.should_exit, duration, feed)

    code = await daemon.serve(live_view)
    console.print(_plain(daemon.service), highlight=False, soft_wrap=True, markup=False)
    if feed.finished:
        console.print(f"The tour is over: {feed.opened} incidents opened, {feed.resolved} resolved. "
                      f"`prober demo --help` lists the scenarios; `--scenario none` runs a quiet bank.",
                      highlight=False, soft_wrap=True, markup=False)
    return code


def _playing(runner: ScenarioRunner | None) -> str:
    """What the bank plays, in one line."""
    if runner is None:
        return "Scenario: none (a quiet bank)."
    scenario = runner.scenario
    length = scenario.cycle_s * runner.time_scale
    how = f"played once, {length:.0f}s" if not scenario.repeat else f"played every {length:.0f}s"
    return f"Scenario: {scenario.name} ({how}). {scenario.description}"


class DemoFeed:
    """What happened since the last look, as lines to print: what the bank's scenario
    does (``bank: …``) and each incident opened or resolved."""

    def __init__(self, service: ProberService, scenario: ScenarioRunner | None) -> None:
        self.service = service
        self.scenario = scenario
        self.phase = "healthy"
        self.seen = 0
        self.opened = 0
        self.resolved = 0

    @property
    def finished(self) -> bool:
        """The scenario was played once to its end (the tour)."""
        return self.scenario is not None and self.scenario.phase == "finished"

    def lines(self) -> list[str]:
        now = time.strftime("%H:%M:%S")
        lines: list[str] = []
        phase = self.scenario.phase if self.scenario is not None else self.phase
        if phase != self.phase:
            self.phase = phase
            if phase not in ("not started", "finished", "stopped"):
                lines.append(f"[{now}] bank: {phase}")
        incidents = self.service.incidents
        new = min(incidents.changes - self.seen, len(incidents.events))
        self.seen = incidents.changes
        for event in list(incidents.events)[len(incidents.events) - new:]:
            incident = event.incident
            if incident.kind == CERTIFICATE_KIND:
                if event.event == "resolved":
                    self.resolved += 1
                    lines.append(f"[{now}] certificate warning resolved: {incident.site}: "
                                 f"{incident.check.removeprefix('certificate:')} renewed")
                elif event.event in ("opened", "escalated"):
                    self.opened += event.event == "opened"
                    lines.append(f"[{now}] certificate warning: {incident.site}: {incident.error.split(';')[0]}")
                continue
            if event.event == "opened":
                self.opened += 1
                lines.append(
                    f"[{now}] incident opened: {incident.site}/{incident.kind}: check {incident.check} fails at "
                    f"{incident.failed_step or 'the journey'} ({incident.outcome})"
                )
            elif event.event == "resolved":
                self.resolved += 1
                lines.append(f"[{now}] incident resolved: {incident.site}/{incident.kind} after "
                             f"{incident.duration_s:.0f}s")
        return lines


async def _view(
    service: ProberService, console: Console, stop: asyncio.Event, duration: float | None, feed: DemoFeed
) -> None:
    """The live view until ``stop``, ``duration`` or, without a duration, the end of a
    scenario played once (the tour)."""
    deadline = time.monotonic() + duration if duration is not None else None

    async def tick(seconds: float) -> bool:
        """Sleep; True when it is time to stop."""
        if deadline is not None:
            seconds = min(seconds, max(deadline - time.monotonic(), 0.0))
        await wait_event(stop, seconds)
        if deadline is None and feed.finished:
            return True
        return stop.is_set() or (deadline is not None and time.monotonic() >= deadline)

    if console.is_terminal:
        with Live(_grid(service), console=console, refresh_per_second=4, transient=False) as live:
            while not await tick(0.5):
                for line in feed.lines():
                    live.console.print(line, highlight=False, soft_wrap=True, markup=False)
                live.update(_grid(service))
            live.update(_grid(service))
    else:
        summary_at = time.monotonic() + PLAIN_EVERY
        while not await tick(FEED_EVERY):
            for line in feed.lines():
                print(line, flush=True)
            if time.monotonic() >= summary_at:
                summary_at += PLAIN_EVERY
                print(_plain(service), flush=True)
        for line in feed.lines():
            print(line, flush=True)


STATE_STYLE = {"ok": "green", "degraded": "bold yellow", "outage": "bold red", "unknown": "dim"}
STATE_MARK = {"ok": "●", "degraded": "◐", "outage": "✖", "unknown": "○"}


def _check_line(entry: CheckStatus) -> Text:
    last = entry.last
    if last is None:
        return Text(f"{entry.check}: waiting", style="dim")
    style = "green" if last.success else ("yellow" if last.outcome.value == "skipped" else "red")
    text = Text(f"{entry.check} {last.outcome.value}", style=style)
    text.append(f"  {last.duration_ms:.0f} ms", style="cyan")
    if last.error:
        text.append("\n" + last.error[:60], style="dim")
    return text


def _capability_cell(state: CapabilityState | None, entries: list[CheckStatus]) -> Text:
    """The capability's state in words and colour, since when, then its checks."""
    name = state.state if state else "unknown"
    if name == "ok" and entries and all(e.last is None for e in entries):
        name = "unknown"
    cell = Text(f"{STATE_MARK[name]} {name.upper()}", style=STATE_STYLE[name])
    if state and state.since_ns and name != "ok":
        cell.append(f" since {_clock(state.since_ns)}", style=STATE_STYLE[name])
    for entry in sorted(entries, key=lambda e: e.check):
        cell.append("\n")
        cell.append_text(_check_line(entry))
    return cell


def _clock(ns: int | None) -> str:
    """``19:40:05`` (UTC) of a time in nanoseconds."""
    return utc_iso_ns(ns or 0)[11:19]


def _grid(service: ProberService) -> Group:
    doc_lag = service.scheduler.lag_percentiles()
    stats = service.writer.stats
    incidents = service.incidents.status()
    table = Table(
        title="bank-prober demo: capability × bank",
        caption=(
            f"runs {service.scheduler.started_runs} · results {service.results} · "
            f"lag p50/p99 {doc_lag[0]:.1f}/{doc_lag[1]:.1f} ms · "
            f"points spooled {stats.spooled_points} · {time.strftime('%H:%M:%S')}"
        ),
    )
    checks = list(service.status.checks.values())
    kinds = [k for k in KINDS if any(e.kind == k for e in checks)]
    table.add_column("bank", style="bold")
    for kind in kinds:
        table.add_column(kind)
    for site in sorted({e.site for e in checks}):
        table.add_row(site, *[
            _capability_cell(incidents.capabilities.get((site, kind)),
                             [e for e in checks if e.site == site and e.kind == kind])
            for kind in kinds
        ])
    return Group(table, _incident_lines(incidents))


def _what_fails(incident: Incident) -> str:
    """``check login fails at step token (auth)``; a certificate warning says what expires when."""
    if incident.kind == CERTIFICATE_KIND:
        return incident.error.split(";")[0]
    return f"check {incident.check} fails at {incident.failed_step or 'the journey'} ({incident.outcome})"


def _incident_lines(incidents: IncidentStatus) -> Text:
    text = Text()
    if not incidents.open:
        text.append("No open incident.", style="green")
    for incident in incidents.open:
        text.append(f"OPEN since {_clock(incident.since_ns)}  ", style="bold red")
        text.append(f"{incident.site} {incident.kind}: {_what_fails(incident)}\n")
    for incident in incidents.recent[:3]:
        text.append(f"\nRESOLVED {_clock(incident.resolved_ns)}  ", style="green")
        text.append(f"{incident.site} {incident.kind} was failing {_clock(incident.since_ns)}"
                    f"-{_clock(incident.resolved_ns)} ({incident.duration_s:.0f} s)")
    return text


def _plain(service: ProberService) -> str:
    p50, p99 = service.scheduler.lag_percentiles()
    lines = [
        f"[{time.strftime('%H:%M:%S')}] runs={service.scheduler.started_runs} results={service.results} "
        f"lag_p50_ms={p50:.1f} lag_p99_ms={p99:.1f} spooled_points={service.writer.stats.spooled_points}"
    ]
    incidents = service.incidents.status()
    for site in incidents.sites:
        states = ", ".join(f"{c.kind} {c.state}" for c in incidents.of_site(site))
        lines.append(f"  {site}: {states}")
    for incident in incidents.open:
        lines.append(f"  OPEN {incident.site}/{incident.kind} since {utc_iso_ns(incident.since_ns)}: "
                     f"{_what_fails(incident)}")
    for incident in incidents.recent:
        lines.append(f"  RESOLVED {incident.site}/{incident.kind} {utc_iso_ns(incident.since_ns)} to "
                     f"{utc_iso_ns(incident.resolved_ns or 0)} ({incident.duration_s:.0f}s)")
    for entry in service.status.checks.values():
        last = entry.last
        if last is None:
            lines.append(f"  {entry.site}/{entry.check} ({entry.kind}): waiting")
            continue
        error = f" error={last.error!r}" if last.error else ""
        lines.append(
            f"  {entry.site}/{entry.check} ({entry.kind}): {last.outcome.value} {last.duration_ms:.0f}ms "
            f"runs={entry.runs} failures_in_a_row={entry.consecutive_failures}{error}"
        )
    return "\n".join(lines)
