"""``prober run --workers N``: one supervisor process, N worker processes.

The supervisor loads the configuration once (an invalid one: exit 2, as always), then
starts each worker as ``prober run … --worker k/N`` (its own process group, so that a
Ctrl-C in a terminal reaches the supervisor alone) and:

* forwards SIGTERM, SIGINT and SIGHUP to every worker: each reloads or shuts down as a
  single ``prober run`` does (a second SIGTERM forces the workers' shutdown too);
* restarts a worker that exits while no stop was asked, after a back-off (1 s, doubled
  each time up to 60 s, back to 1 s once a worker has run for a minute), logged;
* on SIGTERM / SIGINT, waits for every worker to flush or spool its results and exits
  0, or 130 when a worker's shutdown was forced, 1 when one failed;
* restarts a worker that is stuck: when the workers' health endpoints are on known ports,
  it asks each one's ``/healthz`` every few seconds, and a worker that answers nothing at
  all for ``[daemon] worker_stall_timeout`` (any HTTP status is an answer: a worker whose
  InfluxDB is down is alive; a starting worker has at least a minute for its first
  answer) gets SIGKILL, then the restart above. A stuck event loop
  would otherwise leave its share of the banks unprobed behind a live process;
* answers ``/healthz`` and ``/status`` for the whole process tree on ``health_listen``
  (the workers listen on its port + k), from what that polling and the processes'
  starts and exits tell it: :mod:`prober.daemon.workers` says when the tree is healthy.
* applies ``[access]`` (:mod:`prober.access`) to its own listener as the workers do to
  theirs, speaks TLS to the workers' health ports when ``[access.tls]`` is set, and
  reads ``[access]`` again on SIGHUP (the workers reload their whole configuration).

A worker whose supervisor dies (SIGKILL) notices within a second and shuts down
cleanly, so no orphan keeps probing. Which sites each worker runs, and under which
instance name, spool, state directory and health port: :mod:`prober.daemon.sharding`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path

from prober.access import AccessGate
from prober.config.access import exposure_problems
from prober.config.errors import ConfigError
from prober.daemon.sharding import Share
from prober.daemon.workers import SupervisorHealthServer, WorkerRecord, ask_health, health_client_context
from prober.waiting import cancel_and_wait

log = logging.getLogger("prober.daemon.supervisor")

EXIT_OK, EXIT_FAILED, EXIT_FORCED = 0, 1, 130
EXIT_STARTUP = 1
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
BACKOFF_FIRST, BACKOFF_MAX, HEALTHY_AFTER = 1.0, 60.0, 60.0
"""Restart back-off of a worker (seconds), and how long it must run to reset it."""
POLL_MAX = 5.0
"""Longest wait between two health questions to a worker (seconds)."""
START_GRACE = 60.0
"""How long a starting worker may take to answer its first health question (seconds)."""


def _ignore_sighup() -> None:
    """In a worker before it runs: a SIGHUP that comes before its handlers are installed
    (a reload just as it starts, when it loads the configuration anyway) must not kill it."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


class Supervisor:
    """Starts, watches, signals and restarts the worker processes of one ``prober run``."""

    def __init__(
        self,
        path: str | Path,
        workers: int,
        *,
        shard: Share | None = None,
        log_level: str | None = None,
        log_format: str | None = None,
        health: list[tuple[str, int]] | None = None,
        stall_timeout: float = 60.0,
        listen: tuple[str, int] | None = None,
        instance: str = "",
        gate: AccessGate | None = None,
    ) -> None:
        self.path = str(path)
        self.gate = gate or AccessGate()
        """``[access]`` of the supervisor's listener (and TLS to the workers' health ports)."""
        self.health_tls = health_client_context() if self.gate.tls is not None else None
        self.health = health
        """``(host, port)`` of each worker's health endpoint (worker k at index k - 1), or
        None when unknown (disabled, or port 0): no stall watch then."""
        self.stall_timeout = stall_timeout
        self.poll = min(POLL_MAX, stall_timeout / 4)
        """Seconds between two health questions to a worker."""
        self.listen = listen
        """``(host, port)`` where the supervisor answers for the tree; None: it does not."""
        self.workers = workers
        self.shard = shard
        self.options = [*(["--log-level", log_level] if log_level else []),
                        *(["--log-format", log_format] if log_format else [])]
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.codes: dict[int, int] = {}
        suffix = f"-s{shard.index}" if shard is not None and shard.count > 1 else ""
        self.records = [WorkerRecord(k, workers, f"{instance}{suffix}-w{k}", health[k - 1] if health else None,
                                     "https" if self.health_tls is not None else "http")
                        for k in range(1, workers + 1)]
        """What is known of each worker (worker k at index k - 1)."""
        self.stopping: asyncio.Event | None = None
        self._forced = False
        self._reloads: set[asyncio.Task[bool]] = set()

    @property
    def restarts(self) -> int:
        """Worker restarts since the start, all workers together."""
        return sum(r.restarts for r in self.records)

    @property
    def stalls(self) -> int:
        """Workers killed for answering nothing, since the start."""
        return sum(r.stalls for r in self.records)

    def command(self, index: int) -> list[str]:
        """The command line of worker ``index`` (1-based)."""
        shard = ["--shard", f"{self.shard.index}/{self.shard.count}"] if self.shard is not None else []
        return [sys.executable, "-m", "prober", "run", "-c", self.path, *shard, *self.options,
                "--worker", f"{index}/{self.workers}"]

    def run(self) -> int:
        """Supervise until every worker has stopped; the exit code."""
        try:
            # asyncio's own loop: the supervisor does no probing, and uvloop's subprocess
            # support has no process_group (each worker gets its own process group).
            return asyncio.run(self.serve())
        except KeyboardInterrupt:
            return EXIT_FORCED

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        server = self._health_server()
        if server is not None:
            try:
                await server.start()
            except OSError as exc:
                log.error("cannot start: %s", exc.strerror or exc)
                return EXIT_STARTUP
        saved = {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS}
        for sig in HANDLED_SIGNALS:
            loop.add_signal_handler(sig, self.handle_signal, sig)
        try:
            log.warning("supervising %d workers (the sites split among them by name)", self.workers)
            await asyncio.gather(*(self._keep(index) for index in range(1, self.workers + 1)))
        finally:
            for sig, previous in saved.items():
                loop.remove_signal_handler(sig)
                signal.signal(sig, previous)
            if server is not None:
                await server.stop()
            self.gate.close()
        if self._forced or EXIT_FORCED in self.codes.values():
            return EXIT_FORCED
        failed = {k: code for k, code in self.codes.items() if code != EXIT_OK}
        if failed:
            log.error("workers stopped with errors: %s", ", ".join(f"worker {k}: exit {c}" for k, c in failed.items()))
            return EXIT_FAILED
        log.warning("all %d workers stopped", self.workers)
        return EXIT_OK

    def _health_server(self) -> SupervisorHealthServer | None:
        if self.listen is None:
            return None
        stopping = self.stopping
        assert stopping is not None
        settings = {
            "instance_shard": None if self.shard is None else f"{self.shard.index}/{self.shard.count}",
            "poll_interval_s": self.poll if self.health else None,
            "stall_timeout_s": self.stall_timeout if self.health else None,
        }
        return SupervisorHealthServer(*self.listen, self.records, stopping.is_set, settings, gate=self.gate)

    def handle_signal(self, sig: int) -> None:
        assert self.stopping is not None
        if sig == signal.SIGHUP:
            task = asyncio.get_running_loop().create_task(self.reload_access())
            self._reloads.add(task)
            task.add_done_callback(self._reloads.discard)
        else:
            if self.stopping.is_set():
                self._forced = True
            self.stopping.set()
        for proc in list(self.procs.values()):
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)

    async def reload_access(self) -> bool:
        """Read the configuration again and apply its ``[access]`` to the supervisor's
        listener; an invalid one (each worker logs why) leaves the running credentials, as
        it leaves the workers' running configuration."""
        from prober.loading import load  # the workers' own test of validity

        try:
            config = (await asyncio.to_thread(load, self.path)).config
        except ConfigError:
            log.error("reload: the configuration is invalid; the supervisor keeps its [access] credentials")
            return False
        problems = exposure_problems(config, self.path)
        if problems:
            for problem in problems:
                log.error("config error: %s", problem)
            log.error("reload: the supervisor keeps its [access] credentials")
            return False
        self.gate.configure(config.access)
        return True

    async def _keep(self, index: int) -> None:
        """Run worker ``index`` until a stop, restarting it when it dies."""
        assert self.stopping is not None
        backoff = BACKOFF_FIRST
        while not self.stopping.is_set():
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(*self.command(index), process_group=0,
                                                        preexec_fn=_ignore_sighup)
            self.procs[index] = proc
            record = self.records[index - 1]
            record.started(proc.pid, time.time())
            if self.stopping.is_set():  # the stop came while it was being started
                proc.send_signal(signal.SIGTERM)
            watch = asyncio.create_task(self._watch(index, proc)) if self.health else None
            try:
                code = await proc.wait()
            finally:
                await cancel_and_wait(watch)
            if self.stopping.is_set():
                # Killed by the stop signal itself: it came before the worker had its
                # handlers, so before it had probed anything.
                self.codes[index] = EXIT_OK if code in (-signal.SIGTERM, -signal.SIGINT) else code
                record.exited(code, restarting=False)
                return
            self.codes[index] = code
            ran = time.monotonic() - started
            if ran >= HEALTHY_AFTER:
                backoff = BACKOFF_FIRST
            record.exited(code, restarting=True)
            del self.codes[index]  # a stop during the back-off is a clean stop
            log.error("worker %d (pid %d) exited with code %d after %.1fs; restarting it in %gs",
                      index, proc.pid, code, ran, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
        self.codes.setdefault(index, EXIT_OK)

    async def _watch(self, index: int, proc: asyncio.subprocess.Process) -> None:
        """Kill worker ``index`` when its health endpoint answers nothing for
        ``stall_timeout`` (from its start, or from its last answer)."""
        assert self.health is not None and self.stopping is not None
        host, port = self.health[index - 1]
        record = self.records[index - 1]
        poll = self.poll
        last_answer = time.monotonic()
        limit = max(self.stall_timeout, START_GRACE)  # until it first answers: loading a large config
        while proc.returncode is None and not self.stopping.is_set():
            await asyncio.sleep(poll)
            status = await ask_health(host, port, timeout=poll, tls=self.health_tls)
            if proc.returncode is not None:
                break  # it exited meanwhile: its record says so already
            record.answered(status, time.time())
            if status is not None:
                last_answer, limit = time.monotonic(), self.stall_timeout
                continue
            silent = time.monotonic() - last_answer
            if silent >= limit and proc.returncode is None and not self.stopping.is_set():
                record.stalls += 1
                log.error("worker %d (pid %d) has answered nothing on %s://%s:%d/healthz for %.0fs: "
                          "it is stuck; killing it", index, proc.pid, record.scheme, host, port, silent)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # its own process group: its children too
                return

