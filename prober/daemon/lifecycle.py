"""``prober run``: startup → main loop → shutdown, with signals, as uvicorn does.

* **Startup**: load the configuration (errors: exit 2, one ``config error:`` line each,
  no traceback; so is a listener that would serve internal routes beyond loopback
  without authentication, :func:`~prober.config.access.exposure_problems`), set up
  logging (the command line's level and format, else ``[daemon]``'s; a warning when
  ``[access] allow_unauthenticated`` lets such a listener start), start the writer and
  the other result consumers, the scheduler, the health server and the status page (on
  the health listener, or on ``[status_page] listen``), every listener behind the same
  :class:`~prober.access.AccessGate`.
* **Main loop**: wait for a signal.

  - ``SIGHUP``: load the configuration again (same :func:`~prober.loading.load`);
    a valid one replaces the checks (added, removed and changed checks take effect
    at once; runs in flight finish with the plan they started with and are recorded)
    and the ``[access]`` credentials and rate limit.
    An invalid one is logged with the same ``config error:`` lines as
    ``prober validate``, and the running configuration keeps going.
  - ``SIGTERM`` / ``SIGINT``: shut down.

* **Shutdown**: ``/healthz`` answers 503; no new runs; running journeys get
  ``grace_period`` to finish (cleanup steps included); the rest are cancelled and
  recorded as ``skipped`` results (``cancelled: …``); every result is handed to the
  writer, which flushes or spools it; exit 0.
  A second SIGINT or SIGTERM during shutdown forces it: running journeys are cancelled
  at once (still recorded), the writer gets 1 s to flush and spools the rest, and the
  exit code is 130. The signal handlers in place before are restored on exit, so a
  third signal is handled by them (by default: the process dies).

With ``--shard K/N`` or as a worker of ``--workers N`` (:mod:`prober.daemon.supervisor`),
the daemon runs its share of the sites under its own identity
(:mod:`prober.daemon.sharding`), on start and on every reload.

Exit codes: 0 clean stop, 1 startup failure (e.g. the health address is in use),
2 configuration error, 130 forced stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prober import eventloop
from prober.access import AccessGate
from prober.config.access import exposure_problems, unauthenticated_exposures
from prober.config.daemon import DaemonConfig, split_listen
from prober.config.errors import ConfigError
from prober.config.model import Config
from prober.daemon.health import HealthServer
from prober.daemon.service import ProberService
from prober.daemon.sharding import Share, select_sites, share_identity, spool_dir_of, worker_port
from prober.loading import LoadedConfig, load
from prober.logs import LogFormat, setup_logging
from prober.statuspage import StatusPage, StatusPageServer
from prober.writer.writer import ResultWriter

if TYPE_CHECKING:
    from prober.daemon.supervisor import Supervisor

log = logging.getLogger("prober.daemon")

EXIT_OK, EXIT_STARTUP, EXIT_CONFIG, EXIT_FORCED = 0, 1, 2, 130
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PARENT_POLL = 1.0
"""Seconds between a worker's checks that its supervisor is still there."""


def config_error_lines(exc: ConfigError) -> list[str]:
    """The lines ``prober validate`` prints for ``exc``."""
    return [f"config error: {problem}" for problem in exc.problems]


class Daemon:
    """One ``prober run``: a service, its health server, signal handling."""

    def __init__(
        self,
        path: str | Path,
        loaded: LoadedConfig,
        *,
        environ: Mapping[str, str] | None = None,
        service_factory: Callable[[LoadedConfig], ProberService] | None = None,
        health_listen: str | None = None,
        prepare: Callable[[LoadedConfig], LoadedConfig] | None = None,
        parent_pid: int | None = None,
        gate: AccessGate | None = None,
    ) -> None:
        self.path = path
        self.environ = environ
        self.prepare = prepare
        """Applied to every configuration loaded on SIGHUP (a share's sites and identity)."""
        self.parent_pid = parent_pid
        """A worker's supervisor: when it is gone (killed), the worker shuts down too."""
        self.service = (service_factory or ProberService)(loaded)
        self.gate = gate or AccessGate(loaded.config.access)
        """Who may see what, on every listener of this process (``[access]``)."""
        listen = loaded.config.daemon.listen_address() if health_listen is None else split_listen(health_listen)
        page_settings = loaded.config.status_page
        page = StatusPage(self.service.page_source(), page_settings) if page_settings.enabled else None
        page_listen = page_settings.listen_address()
        self.page_server = (StatusPageServer(page, *page_listen, gate=self.gate)
                            if page is not None and page_listen else None)
        on_health = page if page is not None and self.page_server is None else None
        self.health = HealthServer(self.service, *listen, page=on_health, gate=self.gate) if listen else None
        if on_health is not None and self.health is None:
            log.warning("[status_page] has no listen address and health_listen is off: the status page is not served")
        self.should_exit = asyncio.Event()
        self.force_exit = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._saved: dict[int, Any] = {}

    # -- signals -----------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in HANDLED_SIGNALS:
            self._saved[sig] = signal.getsignal(sig)
            loop.add_signal_handler(sig, self.handle_signal, sig)

    def restore_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig, previous in self._saved.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, previous)
        self._saved.clear()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def handle_signal(self, sig: int) -> None:
        if sig == signal.SIGHUP:
            if not self.should_exit.is_set():
                self._spawn(self.reload())
            return
        name = signal.Signals(sig).name
        if self.should_exit.is_set():
            log.warning("%s again: forcing the shutdown", name)
            self.force_exit.set()
        else:
            log.warning("%s: shutting down (running journeys get %gs to finish; %s again forces it)",
                        name, self.service.settings.grace_period, name)
            self.should_exit.set()

    async def reload(self) -> bool:
        """Load the configuration again; keep the running one if the new one is invalid."""
        async with self._reload_lock:
            log.warning("SIGHUP: reloading the configuration from %s", self.path)
            try:
                loaded = await asyncio.to_thread(load, self.path, self.environ)
            except ConfigError as exc:
                for line in config_error_lines(exc):
                    log.error("%s", line)
                self.service.last_reload_error = "; ".join(exc.problems)[:2000]
                log.error("reload failed: the configuration is invalid; keeping the running configuration")
                return False
            problems = exposure_problems(loaded.config, str(self.path))
            if problems:
                for problem in problems:
                    log.error("config error: %s", problem)
                self.service.last_reload_error = "; ".join(problems)[:2000]
                log.error("reload failed: keeping the running configuration")
                return False
            if self.should_exit.is_set():
                return False
            self.gate.configure(loaded.config.access)
            if self.prepare is not None:
                loaded = self.prepare(loaded)
            self.service.reload(loaded)
            return True

    async def _watch_parent(self) -> None:
        while os.getppid() == self.parent_pid:
            await asyncio.sleep(PARENT_POLL)
        log.error("the supervisor (pid %d) is gone: shutting down", self.parent_pid)
        self.should_exit.set()

    # -- lifecycle ---------------------------------------------------------------------

    async def serve(self, main: Callable[[], Coroutine[object, object, object]] | None = None) -> int:
        """Start, run until a stop signal (or until ``main``, e.g. the demo's live view,
        returns), shut down; the exit code."""
        self.install_signal_handlers()
        try:
            try:
                await self.startup()
            except OSError as exc:
                log.error("cannot start: %s", exc.strerror or exc)
                await self.service.stop(grace=0.0)
                return EXIT_STARTUP
            if self.parent_pid is not None:
                self._spawn(self._watch_parent())
            if main is None:
                await self.should_exit.wait()
            else:
                await self._run_until_exit(main)
            await self.shutdown()
            return EXIT_FORCED if self.force_exit.is_set() else EXIT_OK
        finally:
            self.restore_signal_handlers()

    async def _run_until_exit(self, main: Callable[[], Coroutine[object, object, object]]) -> None:
        task = asyncio.get_running_loop().create_task(main())
        stop = asyncio.get_running_loop().create_task(self.should_exit.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.should_exit.set()

    async def startup(self) -> None:
        if self.health is not None:
            await self.health.start()
        if self.page_server is not None:
            await self.page_server.start()
        await self.service.start()

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.service.stop(force=self.force_exit)
        if self.page_server is not None:
            await self.page_server.stop()
        if self.health is not None:
            await self.health.stop()
        self.gate.close()


@dataclass(frozen=True, slots=True)
class RunOptions:
    """``prober run``'s own options; None: what ``[daemon]`` says."""

    log_level: str | None = None
    log_format: LogFormat | None = None
    shard: Share | None = None
    workers: int | None = None
    worker: Share | None = None
    """Set in each worker of ``--workers N``: the share of ``shard`` it runs."""

    @property
    def shares(self) -> list[Share]:
        """The shares of the sites this process runs, one per level (none: every site)."""
        return [s for s in (self.shard, self.worker) if s is not None and s.count > 1]

    def supervises(self, settings: DaemonConfig) -> bool:
        """Whether this process is the supervisor of workers (a worker never is)."""
        return self.worker is None and self.worker_count(settings) > 1

    def worker_count(self, settings: DaemonConfig) -> int:
        return self.workers if self.workers is not None else settings.workers

    def start_logging(self, settings: DaemonConfig, instance: str = "") -> None:
        """Logging as the options, else ``[daemon]``, say; ``instance`` names a share's lines."""
        setup_logging(self.log_level or settings.log_level, self.log_format or settings.log_format, instance=instance)


def run(
    path: str | Path,
    *,
    log_level: str | None = None,
    log_format: LogFormat | None = None,
    environ: Mapping[str, str] | None = None,
    shard: Share | None = None,
    workers: int | None = None,
    worker: Share | None = None,
) -> int:
    """``prober run -c PATH [--shard K/N] [--workers N]``: returns the exit code.

    Load the configuration, then run either the supervisor of ``workers`` (default
    ``[daemon] workers``) worker processes (:mod:`prober.daemon.supervisor`) or one
    daemon: every site, or the share ``worker`` (set in each worker) of the share
    ``shard``. What this process does not keep of the configuration is let go before it
    runs: a large configuration is tens of MB.
    """
    options = RunOptions(log_level=log_level, log_format=log_format, shard=shard, workers=workers, worker=worker)
    loaded = load_for_run(path, environ)
    if loaded is None:
        return EXIT_CONFIG
    options.start_logging(loaded.config.daemon)
    if options.worker is None:
        warn_unauthenticated(loaded.config)
    if options.supervises(loaded.config.daemon):
        supervisor = build_supervisor(path, loaded, options)
        del loaded  # the workers load their own: the supervisor keeps no configuration
        gc.collect()
        return supervisor.run()
    main = daemon_main(path, loaded, options, environ)
    del loaded  # the daemon keeps its own share only, and lets even that go at a reload
    return run_event_loop(main)


def load_for_run(path: str | Path, environ: Mapping[str, str] | None) -> LoadedConfig | None:
    """The configuration, or None when it is refused (each problem printed as ``prober
    validate`` prints it): invalid, or exposing internal routes without authentication."""
    try:
        loaded = load(path, environ)
    except ConfigError as exc:
        for line in config_error_lines(exc):
            print(line, file=sys.stderr)
        return None
    exposed = exposure_problems(loaded.config, str(path))
    for problem in exposed:
        print(f"config error: {problem}", file=sys.stderr)
    return None if exposed else loaded


def warn_unauthenticated(config: Config) -> None:
    """A warning for each listener that ``[access] allow_unauthenticated`` lets serve
    internal routes beyond loopback (refused at load time unless allowed)."""
    for served in unauthenticated_exposures(config):
        log.warning("[access] allow_unauthenticated = true: %s %r serves %s to anyone who reaches it, "
                    "without authentication", served.field, served.listen, served.internal)


def build_supervisor(path: str | Path, loaded: LoadedConfig, options: RunOptions) -> Supervisor:
    """The supervisor of ``options``' workers; it keeps nothing of ``loaded``."""
    from prober.daemon.supervisor import Supervisor

    settings = loaded.config.daemon
    count = options.worker_count(settings)
    listen = settings.listen_address()  # the supervisor's: it answers for every worker
    health = None
    if listen is not None and listen[1] != 0:  # port 0: the workers' ports are not known here
        health = [(listen[0], worker_port(listen[1], k)) for k in range(1, count + 1)]
    return Supervisor(path, count, shard=options.shard, log_level=options.log_level, log_format=options.log_format,
                      health=health, stall_timeout=settings.worker_stall_timeout, listen=listen,
                      instance=loaded.config.prober.instance, gate=AccessGate(loaded.config.access))


def daemon_main(path: str | Path, loaded: LoadedConfig, options: RunOptions,
                environ: Mapping[str, str] | None) -> Coroutine[Any, Any, int]:
    """The main coroutine of one daemon running ``options``' share of ``loaded``'s sites
    (all of them without a share), as that share's prober (:mod:`prober.daemon.sharding`)."""
    shares = options.shares
    spool_dir = spool_dir_of(loaded.config, shares)
    mine = share_of(loaded, shares)
    if shares:
        options.start_logging(loaded.config.daemon, instance=mine.config.prober.instance)
        _announce_share(shares, mine, total=len(loaded.config.sites))
    return _serve(
        path, mine, environ=environ,
        service_factory=partial(service_of_share, shares=shares, spool_dir=spool_dir),
        prepare=partial(share_of, shares=shares) if shares else None,
        parent_pid=os.getppid() if options.worker is not None else None,
    )


async def _serve(path: str | Path, first: LoadedConfig, *, environ: Mapping[str, str] | None,
                 service_factory: Callable[[LoadedConfig], ProberService],
                 prepare: Callable[[LoadedConfig], LoadedConfig] | None, parent_pid: int | None) -> int:
    daemon = Daemon(path, first, environ=environ, service_factory=service_factory, prepare=prepare,
                    parent_pid=parent_pid)
    del first  # the daemon holds it, and lets it go at a reload
    return await daemon.serve()


def run_event_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on the prober's event loop (:mod:`prober.eventloop`); its exit code."""
    try:
        return eventloop.run(main)
    except KeyboardInterrupt:  # a signal before the handlers were installed
        return EXIT_FORCED


def share_of(loaded: LoadedConfig, shares: Sequence[Share]) -> LoadedConfig:
    """``loaded`` as the prober of ``shares`` runs it: its sites, instance name,
    directories and ports (``loaded`` itself without a share); again at every reload."""
    return share_identity(select_sites(loaded, shares), shares)


def service_of_share(loaded: LoadedConfig, *, shares: Sequence[Share], spool_dir: str) -> ProberService:
    """The service running ``loaded``; a share's writer spools into the share's own directory."""
    writer = ResultWriter(loaded.config.influxdb, spool_dir=spool_dir) if shares else None
    return ProberService(loaded, writer=writer)


def _announce_share(shares: Sequence[Share], mine: LoadedConfig, total: int) -> None:
    names = [site.name for site in mine.config.sites]
    listed = ", ".join(names[:10]) + (", …" if len(names) > 10 else "")
    log.warning("%s: %d of the %d sites (%s)", " and ".join(_describe(s) for s in shares), len(names),
                total, listed or "none: idle until a reload gives it one")


def _describe(share: Share) -> str:
    return f"{share.level} {share.index}/{share.count}"
