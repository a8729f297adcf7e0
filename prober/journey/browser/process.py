"""The prober's side of its browser process (:mod:`prober.journey.browser.worker`).

:class:`BrowserProcess` starts the browser process on the first browser run, sends it
each run's :class:`~prober.journey.browser.plan.BrowserSource` and gives back the
:class:`~prober.results.JourneyResult` it answers: to the scheduler it is a journey
runner like any other. Its log records are emitted here, by the prober's own logging.

A browser process that exits or is killed ends the runs it had with outcome ``error``
(``error: the browser process exited …``); the next run starts a new one. A run
cancelled here (the prober shutting down) is cancelled there. :meth:`close` asks it to
close its browser and exit, and kills it when it does not in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import pickle
import sys
import time
from dataclasses import dataclass
from typing import Any

from prober.journey.browser.plan import BrowserSource
from prober.journey.browser.wire import BrowserProcessSettings, encode, read_message
from prober.journey.plan import JourneyPlan
from prober.journey.verdict import not_run
from prober.results import JourneyResult, Outcome

log = logging.getLogger("prober.journey.browser")

ANSWER_MARGIN = 60.0
"""Seconds a run's answer may take beyond its own bounds (waiting for a free browser,
the journey's timeout, its cleanup steps' timeouts): a launch (up to 30 s), the evidence
and the context's closing (5 s each), with room to spare."""
EXIT_TIMEOUT = 15.0
"""Seconds the browser process gets to close its browser and exit before it is killed
(its contexts get 5 s each to close, then the browser and the driver theirs)."""


@dataclass(frozen=True, slots=True)
class _Pending:
    """A run sent to a browser process, waiting for its answer."""

    plan: JourneyPlan
    answer: asyncio.Future[JourneyResult]
    process: asyncio.subprocess.Process


class BrowserProcess:
    """Runs browser journeys in a process of its own, started on first use."""

    def __init__(self, settings: BrowserProcessSettings) -> None:
        self.settings = settings
        self.starts = 0
        """Browser processes started (the first, then one after each that exited)."""
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The browser process's pid while one runs."""
        return self._process.pid if self._process is not None else None

    async def run(self, plan: JourneyPlan) -> JourneyResult:
        """Run the browser journey of ``plan`` there (never raises but ``CancelledError``)."""
        assert plan.browser is not None and plan.browser.source is not None
        started_ns = time.time_ns()
        try:
            process = await self._ensure_process()
        except OSError as exc:
            return not_run(plan, f"error: cannot start the browser process: {exc}", Outcome.ERROR, started_ns)
        if process is None:
            return not_run(plan, "cancelled: the prober shut down before the run started", started_at_ns=started_ns)
        run_id = next(self._ids)
        answer: asyncio.Future[JourneyResult] = asyncio.get_running_loop().create_future()
        self._pending[run_id] = _Pending(plan, answer, process)
        try:
            self._send(process, ("run", run_id, *run_request(plan)))
            async with asyncio.timeout(answer_bound(plan)):
                return await answer
        except TimeoutError:
            return await self._unstick(process, plan, started_ns)
        except asyncio.CancelledError:
            self._send(process, ("cancel", run_id))
            raise
        finally:
            self._pending.pop(run_id, None)

    async def _ensure_process(self) -> asyncio.subprocess.Process | None:
        async with self._lock:
            if self._closed:
                return None
            if self._process is not None and self._process.returncode is None:
                return self._process
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "prober.journey.browser.worker",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**26,
            )
            self._send(process, self.settings)
            self._process = process
            self.starts += 1
            self._reader = asyncio.create_task(self._read(process), name="browser-process-reader")
            return process

    async def _unstick(self, process: asyncio.subprocess.Process, plan: JourneyPlan, started_ns: int) -> JourneyResult:
        """A run not answered in :func:`answer_bound`: the browser process is stuck (a run
        ends within its bounds whatever the page does). It is killed, its runs end as
        ``error``, and the next run starts a new one."""
        bound = answer_bound(plan)
        log.error("the browser process did not answer a run of %s/%s in %.0fs: killing it", plan.site, plan.check,
                  bound)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        async with self._lock:
            if self._process is process:  # not handed to another run while it dies
                self._process = None
        return not_run(plan, f"error: the browser process did not answer within {bound:.0f}s (killed; the next "
                       "run starts a new one)", Outcome.ERROR, started_ns)

    @staticmethod
    def _send(process: asyncio.subprocess.Process, message: Any) -> None:
        if process.stdin is not None and not process.stdin.is_closing():
            process.stdin.write(encode(message))

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        try:
            while True:
                message = await read_message(process.stdout)
                if message[0] == "log":
                    _emit(message[1])
                elif message[0] == "result":
                    self._answer(message[1], message[2])
                elif message[0] == "failed":
                    self._answer_error(message[1], f"error: {message[2]}")
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, pickle.UnpicklingError):
            pass
        code = await process.wait()
        if not self._closed:
            log.warning("the browser process exited (code %s): the next browser run starts a new one", code)
        for run_id, pending in list(self._pending.items()):
            if pending.process is process:  # not the runs of a process started since
                self._answer_error(run_id, f"error: the browser process exited (code {code}) during the run")

    def _answer(self, run_id: int, result: JourneyResult) -> None:
        pending = self._pending.get(run_id)
        if pending is not None and not pending.answer.done():
            pending.answer.set_result(result)

    def _answer_error(self, run_id: int, error: str) -> None:
        pending = self._pending.get(run_id)
        if pending is not None and not pending.answer.done():
            pending.answer.set_result(not_run(pending.plan, error, Outcome.ERROR))

    async def close(self) -> None:
        """Ask the browser process to close its browser and exit; kill it after
        :data:`EXIT_TIMEOUT`."""
        async with self._lock:
            self._closed = True
            process, reader = self._process, self._reader
        if process is None:
            return
        if process.returncode is None:
            self._send(process, ("close",))
            if process.stdin is not None:
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), EXIT_TIMEOUT)
            except TimeoutError:
                log.warning("the browser process did not exit in %.0fs: killing it", EXIT_TIMEOUT)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if reader is not None:
            with contextlib.suppress(Exception):
                await reader


def answer_bound(plan: JourneyPlan) -> float:
    """Seconds within which the browser process answers a run of ``plan`` unless stuck."""
    cleanup = sum(step.timeout for step in plan.browser.steps if step.always_run) if plan.browser else 0.0
    return 2 * plan.timeout + cleanup + ANSWER_MARGIN


_COMPILED = frozenset({"steps", "ssl_context", "browser", "source"})
"""Fields the browser process compiles from the source (templates are not pickled)."""


_PICKLED: dict[int, tuple[BrowserSource, bytes]] = {}
"""Each plan's source pickled once (by identity; the source is held so that its id is not
reused), not at every run; emptied when a reload has left too many behind."""
PICKLED_SOURCES = 1024


def _pickled(source: BrowserSource) -> bytes:
    cached = _PICKLED.get(id(source))
    if cached is not None and cached[0] is source:
        return cached[1]
    if len(_PICKLED) >= PICKLED_SOURCES:
        _PICKLED.clear()
    data = pickle.dumps(source, pickle.HIGHEST_PROTOCOL)
    _PICKLED[id(source)] = (source, data)
    return data


def run_request(plan: JourneyPlan) -> tuple[bytes, dict[str, Any], dict[str, Any]]:
    """What the browser process needs to run ``plan``: the pickled source it compiles the
    steps from (the same bytes for every run of a plan: it compiles each once), and every
    other field of the plan and of its browser journey as they are here, so that what
    changed them after they were compiled (``prober demo``'s shorter intervals and
    timeouts, its untrusted test certificate) holds there too."""
    journey = plan.browser
    assert journey is not None and journey.source is not None
    return (
        _pickled(journey.source),
        {f.name: getattr(plan, f.name) for f in dataclasses.fields(plan) if f.name not in _COMPILED},
        {f.name: getattr(journey, f.name) for f in dataclasses.fields(journey) if f.name not in _COMPILED},
    )


def _emit(fields: dict[str, Any]) -> None:
    """Emit a log record of the browser process through the prober's logging."""
    logger = logging.getLogger(fields["name"])
    if logger.isEnabledFor(fields["levelno"]):
        record = logging.makeLogRecord({**fields, "args": None})
        logger.handle(record)
