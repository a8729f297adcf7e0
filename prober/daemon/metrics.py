"""``GET /metrics``: the daemon's state in the Prometheus exposition format.

The figures are read from the parts of the daemon that keep them anyway (the scheduler,
the latest result per check, the incident service, the lockout tracker, the writer)
when Prometheus asks, by a custom collector of the ``prometheus-client`` library. Only
what nothing else keeps is counted per run, by :class:`JourneyMetrics` (a result
consumer): the runs per outcome of each check, its last *executed* run, and the journey
duration histograms. That costs a dictionary look-up, a bisection and a few additions
per run: no metric object, no lock, no label look-up on the event loop.

A scrape takes a snapshot on the event loop in one go (references to the immutable
results and copies of the counters, about a millisecond for 1,000 checks), then formats
it on the loop in slices of :data:`SLICE` checks, letting runs start between slices: a
render in a worker thread would fight the event loop for the GIL and delay every run
started meanwhile. Since a reload also swaps the checks in one go on the loop, a scrape
during a reload shows either the old set of checks or the new one, never a mix. One
scrape is rendered at a time.

The per-check families and the journey histograms are nine-tenths of a page (about 15
samples per check), and ``prometheus-client``'s exposition formats every label of every
sample again at each scrape (about 10 µs a sample: 180 ms of CPU per scrape of 1,000
checks, measured with ``benchmarks/metrics.py`` before this change). So those
families are written from pieces the library formats once: each family's ``# HELP`` and
``# TYPE`` lines, and each check's label set (the library's escaping of the site and
check names), kept until the check goes away; a scrape then only formats values, with
the library's ``floatToGoString``. Every other family goes through the library's own
exposition. The page is the text format 0.0.4, whatever the scraper accepts.

Metrics (every label is a name from the configuration or one of a closed set; never a
URL, a run id or an error text):

per site × check (labels ``site``, ``check``, ``kind``, ``location``), every configured check:
  ``bank_prober_check_interval_seconds``, ``bank_prober_check_runs_total`` (``outcome``;
  ``ok`` from 0, any other outcome from its first run), ``bank_prober_check_failures_total``
  (executed runs whose outcome is not ``ok``), and, from its first executed run (a
  skipped run is not one): ``bank_prober_check_success`` (1/0), ``bank_prober_check_duration_seconds``,
  ``bank_prober_check_phase_duration_seconds`` (``phase`` = dns, connect, tls, ttfb,
  transfer, summed over the run's steps), ``bank_prober_check_last_run_timestamp_seconds``,
  ``bank_prober_check_consecutive_failures``.
per site × capability (``site``, ``kind``, plus ``location`` on the histogram):
  ``bank_prober_journey_duration_seconds`` (histogram of executed runs, buckets in
  :mod:`prober.daemon.histogram`), ``bank_prober_capability_state`` (``state`` = ok,
  degraded, outage; 1 for the current one), ``bank_prober_incidents_open``.
per site that ever refused a login: ``bank_prober_lockout_state`` (``state`` = ok,
  backing_off, credentials_refused).
per site × certificate (``site``, ``certificate``: ``client``, ``signing``,
  ``signing:<check>/<step>``, ``server:<host>``), every certificate the prober knows:
  ``bank_prober_certificate_expiry_timestamp_seconds`` (the earliest not-after of it and
  its chain, Unix time; what ``deploy/prometheus/alerts.yml``'s certificate alerts read).
the prober itself: ``bank_prober_info`` (``prober_instance``: the ``instance`` tag of its
  InfluxDB points, which Prometheus's own ``instance`` label would shadow; ``location``,
  ``version``),
  ``bank_prober_scheduling``, ``bank_prober_checks``, ``bank_prober_running_journeys``,
  ``bank_prober_max_concurrency``, ``bank_prober_schedule_lag_seconds`` (histogram),
  ``bank_prober_runs_started_total``, ``bank_prober_runs_missed_total``,
  ``bank_prober_runs_not_started_total`` (``reason`` = overlap, slot_wait, lockout),
  ``bank_prober_writer_written_points_total``, ``bank_prober_writer_dropped_points_total``,
  ``bank_prober_writer_errors_total``, ``bank_prober_writer_spooled_points``,
  ``bank_prober_writer_queued_points``, ``bank_prober_writer_healthy``,
  ``bank_prober_notifications_total`` (``result`` = sent, failed, dropped, silenced),
  ``bank_prober_notifications_pending``, ``bank_prober_config_reloads_total``,
  ``bank_prober_config_last_reload_successful``, ``bank_prober_config_loaded_timestamp_seconds``,
  and the library's ``process_*`` figures (CPU, memory, open files).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.utils import floatToGoString

from prober.daemon.histogram import JOURNEY_BUCKETS, Histogram
from prober.results import JourneyResult, Outcome, StepResult

if TYPE_CHECKING:
    from prober.daemon.service import ProberService

__all__ = ["Exposition", "JourneyMetrics", "MetricsEndpoint", "ProberCollector", "Snapshot"]

OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)
_INDEX = {outcome: i for i, outcome in enumerate(OUTCOMES)}
_OK = _INDEX[Outcome.OK]
_SKIPPED = _INDEX[Outcome.SKIPPED]
PHASES = ("dns", "connect", "tls", "ttfb", "transfer")
CAPABILITY_STATES = ("ok", "degraded", "outage")
LOCKOUT_STATES = ("ok", "backing_off", "credentials_refused")
CHECK_LABELS = ["site", "check", "kind", "location"]
DURATION_LABELS = ["site", "kind", "location"]
SLICE = 200
"""Checks formatted between two turns of the event loop."""


def _version() -> str:
    try:
        return metadata.version("bank-prober")
    except metadata.PackageNotFoundError:
        return "unknown"


VERSION = _version()


@dataclass(slots=True, eq=False)
class CheckFigures:
    """What ``/metrics`` keeps of one check: runs per outcome and its last executed run."""

    kind: str
    location: str
    outcomes: list[int] = field(default_factory=lambda: [0] * len(OUTCOMES))
    last: JourneyResult | None = None


class JourneyMetrics:
    """A result consumer counting what no other part of the daemon keeps: each check's
    runs per outcome and its last executed run, and the journey durations per site ×
    capability × location (:data:`~prober.daemon.histogram.JOURNEY_BUCKETS`)."""

    def __init__(self) -> None:
        self.checks: dict[tuple[str, str], CheckFigures] = {}
        self.durations: dict[tuple[str, str, str], Histogram] = {}

    def consume(self, result: JourneyResult) -> None:
        entry = self.checks.get((result.site, result.check))
        if entry is None:
            entry = self.checks[(result.site, result.check)] = CheckFigures(result.kind, result.location)
        index = _INDEX[result.outcome]
        entry.outcomes[index] += 1
        if index == _SKIPPED:
            return
        entry.last = result
        entry.kind, entry.location = result.kind, result.location
        key = (result.site, result.kind, result.location)
        histogram = self.durations.get(key)
        if histogram is None:
            histogram = self.durations[key] = Histogram(JOURNEY_BUCKETS)
        histogram.observe(result.duration_ms / 1000.0)

    def reload(self, config: Any) -> None:
        """Forget the checks (and site × capability × location) a reload removed."""
        checks = {(site.name, check.name) for site in config.sites for check in site.checks if check.enabled}
        series = {(site.name, check.kind, config.location_of(site))
                  for site in config.sites for check in site.checks if check.enabled}
        for check in [k for k in self.checks if k not in checks]:
            del self.checks[check]
        for key in [k for k in self.durations if k not in series]:
            del self.durations[key]

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class _CheckRow:
    labels: tuple[str, str, str, str]
    interval: float
    outcomes: tuple[int, ...]
    last: JourneyResult | None
    consecutive_failures: int


@dataclass(slots=True)
class Snapshot:
    """The daemon's figures at one instant, taken on the event loop. :meth:`collect`
    yields the families the library formats; :class:`Exposition` writes the rest."""

    info: dict[str, str]
    scheduling: bool
    checks: list[_CheckRow]
    durations: list[tuple[tuple[str, str, str], Histogram]]
    capabilities: list[tuple[str, str, str, int]]
    lockout: list[tuple[str, str]]
    scheduler: dict[str, float]
    lag: Histogram
    writer: dict[str, float]
    notifications: dict[str, Any]
    config: dict[str, float]
    certificates: list[tuple[str, str, float]] = field(default_factory=list)
    process: ProcessCollector | None = None

    def collect(self) -> Iterator[Metric]:
        """The metric families other than the per-check ones and the journey histograms
        (``prometheus_client``'s collector interface)."""
        yield from self._capabilities()
        yield from self._certificates()
        yield from self._prober()
        if self.process is not None:
            yield from self.process.collect()

    def _capabilities(self) -> Iterator[Metric]:
        state = GaugeMetricFamily("bank_prober_capability_state",
                                  "1 for the current state of the site's capability (ok, degraded, outage).",
                                  labels=["site", "kind", "state"])
        incidents = GaugeMetricFamily("bank_prober_incidents_open",
                                      "Open incidents of the site's capability (one per failing check and location).",
                                      labels=["site", "kind"])
        for site, kind, current, count in self.capabilities:
            for name in CAPABILITY_STATES:
                state.add_metric([site, kind, name], 1.0 if name == current else 0.0)
            incidents.add_metric([site, kind], count)
        lockout = GaugeMetricFamily("bank_prober_lockout_state",
                                    "1 for the lockout protection's state of a site that refused a login.",
                                    labels=["site", "state"])
        for site, current in self.lockout:
            for name in LOCKOUT_STATES:
                lockout.add_metric([site, name], 1.0 if name == current else 0.0)
        yield from (state, incidents, lockout)

    def _certificates(self) -> Iterator[Metric]:
        expiry = GaugeMetricFamily(
            "bank_prober_certificate_expiry_timestamp_seconds",
            "When a certificate expires (Unix time): the earliest not-after of it and its chain; the banks' "
            "(server:<host>, as last seen on a step) and the prober's own (client, signing).",
            labels=["site", "certificate"])
        for site, name, not_after in self.certificates:
            expiry.add_metric([site, name], not_after)
        yield expiry

    def _prober(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("bank_prober_info", "The prober: instance, location, version.",
                                 labels=list(self.info))
        info.add_metric(list(self.info.values()), 1.0)
        yield info
        yield GaugeMetricFamily("bank_prober_scheduling", "1 while the daemon schedules runs (/healthz 200).",
                                value=1.0 if self.scheduling else 0.0)
        s = self.scheduler
        for family, name, documentation, value in (
            (GaugeMetricFamily, "bank_prober_checks", "Checks scheduled.", s["checks"]),
            (GaugeMetricFamily, "bank_prober_running_journeys", "Journeys holding a concurrency slot.", s["running"]),
            (GaugeMetricFamily, "bank_prober_max_concurrency", "Journeys that may run at once.", s["max_concurrency"]),
            (CounterMetricFamily, "bank_prober_runs_started_total", "Runs started.", s["started"]),
            (CounterMetricFamily, "bank_prober_runs_missed_total",
             "Runs dropped because they were later than their interval.", s["missed"]),
            (CounterMetricFamily, "bank_prober_writer_written_points_total", "Points InfluxDB accepted.",
             self.writer["written"]),
            (CounterMetricFamily, "bank_prober_writer_dropped_points_total",
             "Points lost for good (refused by InfluxDB, pushed out of a full spool or memory).",
             self.writer["dropped"]),
            (CounterMetricFamily, "bank_prober_writer_errors_total",
             "Failed writes, to InfluxDB (each retry counts) or to the spool.", self.writer["errors"]),
            (GaugeMetricFamily, "bank_prober_writer_spooled_points", "Points waiting in the spool for a replay.",
             self.writer["spooled"]),
            (GaugeMetricFamily, "bank_prober_writer_queued_points", "Points held in memory on their way to InfluxDB.",
             self.writer["queued"]),
            (GaugeMetricFamily, "bank_prober_writer_healthy",
             "0 from a failed write to InfluxDB until a write succeeds again.", self.writer["healthy"]),
            (GaugeMetricFamily, "bank_prober_notifications_pending", "Notifications waiting to be delivered.",
             self.notifications.get("pending", 0)),
            (CounterMetricFamily, "bank_prober_config_reloads_total", "Successful configuration reloads.",
             self.config["reloads"]),
            (GaugeMetricFamily, "bank_prober_config_last_reload_successful",
             "0 when the last reload found the configuration invalid (the old one runs on).", self.config["ok"]),
            (GaugeMetricFamily, "bank_prober_config_loaded_timestamp_seconds",
             "When the running configuration was loaded (Unix time).", self.config["loaded_at"]),
        ):
            yield family(name, documentation, value=value)
        lag = HistogramMetricFamily("bank_prober_schedule_lag_seconds",
                                    "Start of each run (after waiting for a slot) minus its planned time.")
        lag.add_metric([], self.lag.cumulative(), self.lag.total)
        yield lag
        not_started = CounterMetricFamily("bank_prober_runs_not_started_total",
                                          "Runs recorded as skipped instead of started, by reason.",
                                          labels=["reason"])
        for reason in ("overlap", "slot_wait", "lockout"):
            not_started.add_metric([reason], s[reason])
        yield not_started
        sent = CounterMetricFamily("bank_prober_notifications_total",
                                   "Incident notifications by result.", labels=["result"])
        for result in ("sent", "failed", "dropped", "silenced"):
            sent.add_metric([result], self.notifications.get(result, 0))
        yield sent


class ProberCollector:
    """Takes :class:`Snapshot`\\ s of a :class:`~prober.daemon.service.ProberService`."""

    def __init__(self, service: ProberService, *, process: bool = True) -> None:
        self.service = service
        self.process = ProcessCollector(registry=None) if process else None

    def snapshot(self) -> Snapshot:
        """The figures now; call on the event loop (it reads the daemon's live state)."""
        service = self.service
        scheduler = service.scheduler
        status = service.status.checks
        seen = service.journey_metrics.checks
        rows = []
        for key, entry in scheduler.entries.items():
            plan = entry.plan
            figures = seen.get(key)
            state = status.get(key)
            rows.append(_CheckRow(
                (plan.site, plan.check, plan.kind, plan.location), plan.interval,
                tuple(figures.outcomes) if figures is not None else (0,) * len(OUTCOMES),
                figures.last if figures is not None else None,
                state.consecutive_failures if state is not None else 0,
            ))
        capabilities: list[tuple[str, str, str, int]] = [(site, kind, state.state, len(state.incidents))
                        for (site, kind), state in service.incidents.capabilities().items() if state.state != "unknown"]
        stats = service.writer.stats
        prober = service.loaded.config.prober
        return Snapshot(
            info={"prober_instance": prober.instance, "location": prober.location, "version": VERSION},
            scheduling=service.state == "running" and scheduler.scheduling,
            checks=rows,
            durations=[(key, h.copy()) for key, h in service.journey_metrics.durations.items()],
            capabilities=capabilities,
            lockout=[(site, s.state) for site, s in service.lockout.sites.items()],
            scheduler={
                "checks": len(scheduler.entries), "running": scheduler.active,
                "max_concurrency": scheduler.max_concurrency, "started": scheduler.started_runs,
                "missed": scheduler.missed, "overlap": scheduler.overlaps, "slot_wait": scheduler.waiting_skips,
                "lockout": scheduler.lockout_skips,
            },
            lag=scheduler.lag_histogram.copy(),
            writer={
                "written": stats.written_points, "dropped": stats.dropped_points, "errors": stats.write_errors,
                "spooled": stats.spooled_points, "queued": service.writer.queued_points,
                "healthy": 1.0 if service.writer.healthy else 0.0,
            },
            notifications=service.alerting.status(),
            config={"reloads": service.reloads, "ok": 0.0 if service.last_reload_error else 1.0,
                    "loaded_at": service.loaded_at},
            certificates=service.certificates.expiries(),
            process=self.process,
        )


class _Families:
    """A collector of given families (what ``generate_latest`` formats)."""

    def __init__(self, *families: Metric) -> None:
        self.families = families

    def collect(self) -> tuple[Metric, ...]:
        return self.families


def _header(family: Metric) -> str:
    """The library's ``# HELP`` and ``# TYPE`` lines of ``family`` (given without samples)."""
    return generate_latest(_Families(family)).decode()


# The families written from pieces (see the module's docstring): name → its header.
_CHECK_FAMILIES: dict[str, str] = {family.name + ("_total" if family.type == "counter" else ""): _header(family)
                                   for family in (
    GaugeMetricFamily("bank_prober_check_interval_seconds", "How often the check runs (its interval).",
                      labels=CHECK_LABELS),
    CounterMetricFamily("bank_prober_check_runs_total", "Runs of the check by outcome (skipped ones included).",
                        labels=[*CHECK_LABELS, "outcome"]),
    CounterMetricFamily("bank_prober_check_failures_total", "Executed runs of the check whose outcome is not ok.",
                        labels=CHECK_LABELS),
    GaugeMetricFamily("bank_prober_check_success", "1 when the last executed run succeeded, else 0.",
                      labels=CHECK_LABELS),
    GaugeMetricFamily("bank_prober_check_duration_seconds", "Duration of the last executed run.",
                      labels=CHECK_LABELS),
    GaugeMetricFamily("bank_prober_check_phase_duration_seconds",
                      "Time of the last executed run by phase, summed over its steps.",
                      labels=[*CHECK_LABELS, "phase"]),
    GaugeMetricFamily("bank_prober_check_last_run_timestamp_seconds", "Start of the last executed run (Unix time).",
                      labels=CHECK_LABELS),
    GaugeMetricFamily("bank_prober_check_consecutive_failures",
                      "Failed runs in a row (skipped runs neither count nor reset it).", labels=CHECK_LABELS),
)}
_DURATION_HEADER = _header(HistogramMetricFamily(
    "bank_prober_journey_duration_seconds", "Duration of executed runs per site, capability and location.",
    labels=DURATION_LABELS))
(_INTERVAL, _RUNS, _FAILURES, _SUCCESS, _DURATION, _PHASES, _LAST_RUN, _STREAK) = _CHECK_FAMILIES


def _label_set(names: list[str], values: tuple[str, ...]) -> str:
    """``a="x",b="y"``: the label set as the library formats it (its escaping, its order)."""
    family = GaugeMetricFamily("x", "", labels=names)
    family.add_metric(list(values), 0.0)
    line = generate_latest(_Families(family)).decode().splitlines()[-1]
    return line[line.index("{") + 1:line.rindex("}")]


class Exposition:
    """Writes a :class:`Snapshot` in the text format 0.0.4, in slices (see the module's
    docstring); keeps each check's and each histogram's label set between scrapes."""

    def __init__(self) -> None:
        self._labels: dict[tuple[str, ...], str] = {}

    def _labels_of(self, names: list[str], values: tuple[str, ...]) -> str:
        found = self._labels.get(values)
        if found is None:
            found = self._labels[values] = _label_set(names, values)
        return found

    async def render(self, snapshot: Snapshot) -> bytes:
        fmt = floatToGoString
        lines: dict[str, list[str]] = {name: [] for name in _CHECK_FAMILIES}
        interval, runs, failures, success = lines[_INTERVAL], lines[_RUNS], lines[_FAILURES], lines[_SUCCESS]
        duration, phases, last_run, streak = lines[_DURATION], lines[_PHASES], lines[_LAST_RUN], lines[_STREAK]
        for start in range(0, len(snapshot.checks), SLICE):
            if start:
                await asyncio.sleep(0)  # let runs start between slices
            for row in snapshot.checks[start:start + SLICE]:
                labels = self._labels_of(CHECK_LABELS, row.labels)
                interval.append(f"{_INTERVAL}{{{labels}}} {fmt(row.interval)}\n")
                counts = row.outcomes
                for index, outcome in enumerate(OUTCOMES):
                    if counts[index] or index == _OK:
                        runs.append(f'{_RUNS}{{{labels},outcome="{outcome.value}"}} {fmt(counts[index])}\n')
                failed = sum(counts) - counts[_OK] - counts[_SKIPPED]
                failures.append(f"{_FAILURES}{{{labels}}} {fmt(failed)}\n")
                last = row.last
                if last is None:
                    continue
                success.append(f"{_SUCCESS}{{{labels}}} {'1.0' if last.outcome is Outcome.OK else '0.0'}\n")
                duration.append(f"{_DURATION}{{{labels}}} {fmt(last.duration_ms / 1000.0)}\n")
                for phase, total in zip(PHASES, _phase_totals(last.steps), strict=True):
                    phases.append(f'{_PHASES}{{{labels},phase="{phase}"}} {fmt(total / 1000.0)}\n')
                last_run.append(f"{_LAST_RUN}{{{labels}}} {fmt(last.started_at_ns / 1e9)}\n")
                streak.append(f"{_STREAK}{{{labels}}} {fmt(row.consecutive_failures)}\n")
        await asyncio.sleep(0)
        page: list[bytes] = []
        for name, header in _CHECK_FAMILIES.items():
            page.append((header + "".join(lines[name])).encode())
        await asyncio.sleep(0)
        page.append(await self._durations(snapshot))
        await asyncio.sleep(0)
        page.append(generate_latest(snapshot))
        if len(self._labels) > 2 * (len(snapshot.checks) + len(snapshot.durations)) + 100:
            self._labels.clear()  # label sets of checks removed by reloads
        return b"".join(page)

    async def _durations(self, snapshot: Snapshot) -> bytes:
        """The journey duration histograms, in slices as the checks' families are."""
        fmt = floatToGoString
        parts = [_DURATION_HEADER]
        name = "bank_prober_journey_duration_seconds"
        for start, (key, histogram) in enumerate(snapshot.durations):
            if start and start % SLICE == 0:
                await asyncio.sleep(0)
            labels = self._labels_of(DURATION_LABELS, key)
            for bound, count in histogram.cumulative():
                parts.append(f'{name}_bucket{{{labels},le="{bound}"}} {fmt(count)}\n')
            parts.append(f"{name}_count{{{labels}}} {fmt(histogram.count)}\n")
            parts.append(f"{name}_sum{{{labels}}} {fmt(histogram.total)}\n")
        return "".join(parts).encode()


def _phase_totals(steps: Iterable[StepResult]) -> tuple[float, float, float, float, float]:
    """The phases of a run's steps summed, in milliseconds, in the order of :data:`PHASES`."""
    dns = connect = tls = ttfb = transfer = 0.0
    for step in steps:
        p = step.phases
        if p is not None:
            dns += p.dns_ms
            connect += p.connect_ms
            tls += p.tls_ms
            ttfb += p.ttfb_ms
            transfer += p.transfer_ms
    return dns, connect, tls, ttfb, transfer


class MetricsEndpoint:
    """The ``/metrics`` handler: a snapshot, then the page written in slices on the event
    loop; one scrape at a time."""

    def __init__(self, service: ProberService) -> None:
        self.collector = ProberCollector(service)
        self.exposition = Exposition()
        self._lock = asyncio.Lock()

    async def handle(self, request: web.Request) -> web.Response:
        async with self._lock:
            body = await self.exposition.render(self.collector.snapshot())
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})
