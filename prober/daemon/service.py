"""The daemon's composition: scheduler → results → consumers (writer, status, lockout…).

:class:`ProberService` owns one configuration at a time. It builds the parts from it,
starts them, swaps the set of checks on :meth:`reload`, writes the ``prober``
self-report every ``self_report_interval``, and shuts down in order: stop scheduling,
let runs in flight finish (bounded), close the consumers (the writer last: it flushes
or spools every point).

Self-report (``prober`` measurement, and a ``certificate`` point per certificate the
:class:`~prober.daemon.certificates.CertificateWatch` knows): ``checks`` (scheduled), ``running`` (journeys
holding a concurrency slot), ``schedule_lag_ms`` (p99 of the lags of the runs started
since the previous report; p50 and p99 over the last 10,000 runs are on ``/status``),
and the writer counters. Runs not stacked because the previous run of the same check
was still going are ``check`` points with outcome ``skipped`` and error
``skipped: previous run still going`` (and counted on ``/status`` as ``overlaps``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

from prober.daemon.alerting import compose_incidents
from prober.daemon.certificates import CertificateWatch
from prober.daemon.consumers import ResultConsumer, WriterConsumer
from prober.daemon.heap import freeze_long_lived, thaw
from prober.daemon.locations import CrossLocationIncidents
from prober.daemon.lockout import LockoutTracker, first_pauses
from prober.daemon.metrics import JourneyMetrics
from prober.daemon.scheduler import JourneyScheduler, Key
from prober.daemon.slots import site_limits
from prober.daemon.status import StatusStore
from prober.eventloop import running_loop_name
from prober.journey.browser.evidence import EVIDENCE_NAME, EvidenceStore
from prober.loading import LoadedConfig, journey_runner
from prober.results import JourneyResult
from prober.statuspage import DailyHistory, PageSource
from prober.timefmt import utc_iso
from prober.writer.points import prober_point
from prober.writer.writer import ResultWriter

log = logging.getLogger("prober.daemon")


def fingerprints(loaded: LoadedConfig) -> dict[Key, Hashable]:
    """What each check's plan is built from: a changed fingerprint means a changed check."""
    config = loaded.config
    out: dict[Key, Any] = {}
    for site in config.sites:
        bare_site = site.model_copy(update={"checks": []})
        for check in site.checks:
            out[(site.name, check.name)] = _Fingerprint((bare_site, check, config.location_of(site)))
    return out


class _Fingerprint:
    """Equality by value of pydantic models (which are not hashable)."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Fingerprint) and self.value == other.value

    __hash__ = None  # type: ignore[assignment]  # compared by value, so not hashable


class ProberService:
    """The running prober: one scheduler, the result consumers, the self-report.

    ``writer`` replaces the writer built from ``[influxdb]`` (tests, benchmarks);
    ``consumers`` are added after the built-in ones and, like the writer, receive every
    result; ``plan_override`` rewrites every plan (``prober demo`` shortens intervals
    with it).
    """

    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        writer: ResultWriter | None = None,
        consumers: Sequence[ResultConsumer] = (),
        plan_override: Any = None,
        writer_close_timeout: float = 10.0,
    ) -> None:
        self.loaded = loaded
        daemon = loaded.config.daemon
        self.settings = daemon
        self.plan_override = plan_override
        self.writer = writer if writer is not None else ResultWriter(loaded.config.influxdb)
        if not self.writer.instance:
            self.writer.instance = loaded.config.prober.instance
        self.writer_consumer = WriterConsumer(self.writer, writer_close_timeout)
        self.status = StatusStore()
        self.lockout = LockoutTracker(daemon.lockout_after, daemon.lockout_cooldown, daemon.state_dir,
                                      first_pauses=first_pauses(loaded.config))
        # ── Result consumers, in the order they receive each result. ──────────────
        # Started in this order, closed in reverse: the writer first in, last out, so
        # whatever the others write while closing is still flushed or spooled.
        self.incidents, self.alerting = compose_incidents(loaded.config, self.writer, evidence=self.status.evidence)
        self.lockout.incidents = self.incidents  # a site backing off opens an incident on its login
        self.history = DailyHistory(daemon.state_dir, loaded.config.status_page.history_days)
        """Daily uptime per site × capability (the status page's history bars)."""
        self.locations: CrossLocationIncidents | None = None
        """With ``[incidents.locations]``: the one incident per site × capability across locations."""
        if loaded.config.incidents.locations is not None and loaded.config.influxdb is not None:  # demo: no InfluxDB
            self.locations = CrossLocationIncidents.from_config(
                loaded.config, self.writer, self.alerting.dispatcher.submit)
        self.journey_metrics = JourneyMetrics()
        """Runs per outcome and journey durations, for ``/metrics``."""
        self.certificates = CertificateWatch(loaded.config, incidents=self.incidents)
        """The banks' certificates and the prober's own: expiry, warnings, incidents."""
        self.consumers: list[ResultConsumer] = [
            self.writer_consumer,
            self.status,
            self.journey_metrics,
            self.lockout,
            self.incidents,
            self.certificates,
            *([self.locations] if self.locations is not None else []),
            self.history,
            *consumers,
        ]
        self.recorders: list[ResultConsumer] = [self.writer_consumer, self.lockout, *consumers]
        """The consumers that also receive the late result of a check a reload removed: it
        is written, and a refused login counts against the test customer's account."""
        self.runner = journey_runner(loaded.config)
        """Runs every plan: HTTP for API checks, the process's one browser for browser checks."""
        self.scheduler = JourneyScheduler(self._dispatch, jitter=daemon.jitter, lockout=self.lockout,
                                          runner=self.runner)
        self.state = "created"
        """created → running → stopping → stopped (``/healthz`` is 200 only in running)."""
        self.results = 0
        self.reloads = 0
        self.last_reload_error = ""
        self.loaded_at = time.time()
        self._report_task: asyncio.Task[None] | None = None

    # -- plans -------------------------------------------------------------------------

    def _apply(self, loaded: LoadedConfig) -> tuple[list[Key], list[Key], list[Key]]:
        """Schedule the checks of ``loaded``, with the concurrency slots sized from it."""
        prints = fingerprints(loaded)
        plans = {}
        for plan in loaded.plans:
            if self.plan_override is not None:
                plan = self.plan_override(plan)
            plans[plan.key] = (plan, prints[plan.key])
        limits = site_limits(loaded.config, (plan for plan, _ in plans.values()))
        return self.scheduler.apply(plans, limits)

    def _dispatch(self, result: JourneyResult) -> None:
        self.results += 1
        consumers = self.consumers
        if (result.site, result.check) not in self.scheduler.entries:
            # A run in flight when a reload removed its check: it happened, so it is
            # written and the lockout counts it; the live state (status, metrics,
            # incidents, history) is of the configured checks only, or the removed
            # check would come back and stay.
            consumers = self.recorders
        for consumer in consumers:
            try:
                consumer.consume(result)
            except Exception:  # one consumer's bug must not cost the others the result
                log.exception("result consumer %s failed", type(consumer).__name__)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        await self.alerting.start()  # before the incident service: restored incidents remind
        self.certificates.use_plans(self.loaded.plans)
        for consumer in self.consumers:
            await consumer.start()
        # Every consumer has restored its state (the lockout and certificate watch have
        # taken back their incidents): an incident of a check removed while the prober
        # was stopped would otherwise stay open, and remind, for ever.
        self.lockout.forget_unconfigured()
        self.incidents.forget_unconfigured()
        for plan in self.loaded.plans:
            self.status.declare(plan.site, plan.check, plan.kind)
        self._apply(self.loaded)
        # Before the first runs are armed: the full collection it makes (tenths of a
        # second with a large configuration) would otherwise delay every run due meanwhile.
        freeze_long_lived()
        await self.scheduler.start()
        self._report_task = asyncio.create_task(self._report_loop(), name="prober-self-report")
        self.state = "running"
        log.info(
            "prober running: %d checks of %d sites from %s (event loop: %s)",
            len(self.scheduler.entries), len(self.loaded.config.sites), ", ".join(str(f) for f in self.loaded.files),
            running_loop_name(),
        )

    def reload(self, loaded: LoadedConfig) -> tuple[list[Key], list[Key], list[Key]]:
        """Apply a new, valid configuration's checks; runs in flight are not touched."""
        old = self.loaded.config
        new = loaded.config
        for section in ("influxdb", "daemon", "prober", "status_page"):
            if getattr(old, section) != getattr(new, section):
                log.warning("reload: changes to [%s] take effect at the next restart", section)
        for consumer in self.consumers:
            if callable(reload_consumer := getattr(consumer, "reload", None)):
                reload_consumer(new)
        self.certificates.use_plans(loaded.plans)
        added, removed, changed = self._apply(loaded)
        for key in removed:
            self.status.forget(*key)
        for plan in loaded.plans:
            self.status.declare(plan.site, plan.check, plan.kind)
        self.loaded = loaded
        if self.state == "running":  # a service not started yet has nothing frozen: its start freezes
            freeze_long_lived()
        self.loaded_at = time.time()
        self.reloads += 1
        self.last_reload_error = ""
        log.warning(
            "configuration reloaded: %d checks (%d added, %d removed, %d changed)",
            len(self.scheduler.entries), len(added), len(removed), len(changed),
        )
        return added, removed, changed

    async def stop(self, grace: float | None = None, force: asyncio.Event | None = None) -> None:
        """Stop scheduling, let runs finish within ``grace`` seconds, close everything."""
        if self.state in ("stopping", "stopped"):
            return
        self.state = "stopping"
        grace = self.settings.grace_period if grace is None else grace
        self.scheduler.stop_scheduling()
        cancelled = await self.scheduler.drain(grace, force)
        await self.runner.close()  # no journey runs any more: the browser goes
        if self._report_task is not None:
            self._report_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._report_task
        self._self_report()
        if force is not None and force.is_set():
            self.writer_consumer.close_timeout = min(self.writer_consumer.close_timeout, 1.0)
        for consumer in reversed(self.consumers):
            try:
                await consumer.close()
            except Exception:
                log.exception("closing result consumer %s failed", type(consumer).__name__)
        await self.alerting.close()  # after the incident service: its last changes are delivered
        thaw()
        stats = self.writer.stats
        self.state = "stopped"
        if self.writer.ephemeral:  # the demo: no database, and its spool goes with it
            log.info("prober stopped: %d results (%d cancelled at shutdown)", self.results, cancelled)
            return
        log.warning(
            "prober stopped: %d results (%d cancelled at shutdown); writer: %d points written, "
            "%d dropped, the rest in the spool at %s",
            self.results, cancelled, stats.written_points, stats.dropped_points, self.writer.spool_path,
        )

    # -- self-report ---------------------------------------------------------------------

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.self_report_interval)
            try:
                self._self_report()
            except Exception:
                log.exception("self-report failed")

    def _self_report(self) -> None:
        window = self.scheduler.take_window()
        _, p99 = self.scheduler.lag_percentiles(window)
        settings = self.loaded.config.prober
        stats = dataclasses.asdict(self.writer.stats)
        line = prober_point(
            location=settings.location,
            instance=settings.instance,
            time_ns=time.time_ns(),
            checks=len(self.scheduler.entries),
            running=self.scheduler.active,
            schedule_lag_ms=p99,
            lockout=self.lockout_fields(),
            precision=self.writer.precision,
            **stats,
        )
        self.writer.submit_lines([line, *self.certificates.points(
            instance=settings.instance, time_ns=time.time_ns(), precision=self.writer.precision)])

    def lockout_fields(self) -> dict[str, int]:
        """The lockout protection's fields of the ``prober`` self-report."""
        counts = self.lockout.counts()
        return {
            "sites_backing_off": counts["backing_off"],
            "sites_credentials_refused": counts["credentials_refused"],
            "lockout_skips": self.scheduler.lockout_skips,
        }

    # -- what the status page reads ---------------------------------------------------------

    def page_source(self) -> PageSource:
        """What the status page reads of this service (it imports nothing of the daemon)."""
        return PageSource(
            incidents=self.incidents.status,
            runs=lambda: self.status.checks.values(),
            maintenance=lambda: self.loaded.config.incidents.maintenance,  # the running configuration's
            local_history=self.history,
            influxdb=self.loaded.config.influxdb,
            evidence_file=self.evidence_file,
        )

    def evidence_file(self, site: str, check: str, name: str) -> Path | None:
        """A file kept of a failed browser run of ``site``/``check``
        (``state_dir/evidence/<site>/<check>/<name>``), by the name the runner gave it;
        None when ``name`` is not such a name or there is no such file."""
        if not EVIDENCE_NAME.match(name):
            return None
        path = EvidenceStore(Path(self.loaded.config.daemon.state_dir) / "evidence").directory(site, check) / name
        return path if path.is_file() else None

    # -- /status -------------------------------------------------------------------------

    def status_document(self) -> dict[str, Any]:
        p50, p99 = self.scheduler.lag_percentiles()
        return {
            "status": self.state,
            "instance": self.loaded.config.prober.instance,
            "location": self.loaded.config.prober.location,
            "config": {
                "files": [str(Path(f)) for f in self.loaded.files],
                "loaded_at": utc_iso(self.loaded_at),
                "reloads": self.reloads,
                "last_reload_error": self.last_reload_error,
            },
            "scheduler": {
                "checks": len(self.scheduler.entries),
                "running": self.scheduler.active,
                "in_flight": len(self.scheduler.running),
                "max_concurrency": self.scheduler.max_concurrency,
                "runs": self.scheduler.started_runs,
                "overlaps": self.scheduler.overlaps,
                "waiting_for_slot": sum(pool.waiting for pool in self.scheduler.pools.values()),
                "waiting_skips": self.scheduler.waiting_skips,
                "missed": self.scheduler.missed,
                "lockout_skips": self.scheduler.lockout_skips,
                "schedule_lag_ms": {"p50": round(p50, 3), "p99": round(p99, 3)},
            },
            "lockout": self.lockout.status(),
            "writer": dataclasses.asdict(self.writer.stats),
            "incidents": {**self.incidents.status().to_json(), "notifications": self.alerting.status(),
                          **({"locations": self.locations.status()} if self.locations is not None else {})},
            "checks": self.status.snapshot(),
            "certificates": self.certificates.status(),
        }
