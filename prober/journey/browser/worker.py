"""The browser process: Playwright, its driver and Chromium, away from the prober's loop.

A browser journey is mostly Chromium's work, but Playwright's side of it (the protocol
traffic of every action, event and page figure) runs on the event loop of the process
that drives it, and Chromium at full concurrency takes every core. Driven from the
prober's own loop, that delayed the start of API checks by hundreds of milliseconds.
So the prober starts this process (``python -m prober.journey.browser.worker``) on the
first browser run: it has an event loop of its own, and lowers its priority
(:data:`NICENESS`) before Playwright starts, so the driver and Chromium, its children,
inherit it, and Chromium's session gets it too (:mod:`prober.journey.browser.priority`):
when the cores are short, the API checks' schedule wins, and a browser journey's step
durations are what stretches.

It reads its settings and then run requests on stdin, answers on a pipe of its own
(stdout is pointed at stderr, so nothing a library prints can corrupt a message), and
forwards its log records to the prober. Its life is bound to the prober's: it ignores
the terminal's and the service manager's signals, and when its stdin ends (the prober
closed it, exited or was killed) it closes the browser and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pickle
import signal
import sys
import traceback
from typing import Any

from prober.journey.browser.engine import BrowserEngine, BrowserSettings
from prober.journey.browser.evidence import EvidenceStore
from prober.journey.browser.priority import lower_this_process
from prober.journey.browser.runner import BrowserRunner
from prober.journey.browser.wire import BrowserProcessSettings, encode, read_message
from prober.journey.plan import JourneyPlan, compile_browser_plan
from prober.journey.runner import _log_internal
from prober.redact import Redactor

NICENESS = 10
"""How much lower than the prober's the browser side's CPU priority is (``nice``)."""
CACHED_PLANS = 256
"""Plans compiled from sources, kept by source: more are compiled again."""


class _Forward(logging.Handler):
    """Sends each log record to the prober as plain fields (its text already formatted)."""

    def __init__(self, send: Any) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        exc_text = None
        if record.exc_info:
            exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        self._send(("log", {"name": record.name, "levelno": record.levelno, "levelname": record.levelname,
                            "msg": record.getMessage(), "created": record.created, "exc_text": exc_text}))


class _Worker:
    def __init__(self, settings: BrowserProcessSettings, writer: asyncio.StreamWriter) -> None:
        evidence = None
        if settings.evidence_dir is not None:
            evidence = EvidenceStore(settings.evidence_dir, settings.evidence_runs, settings.evidence_max_bytes)
        engine = BrowserEngine(BrowserSettings(executable=settings.executable,
                                               max_concurrency=settings.max_concurrency,
                                               traces_dir=settings.traces_dir, niceness=NICENESS))
        self.runner = BrowserRunner(engine, evidence)
        self.writer = writer
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.plans: dict[bytes, JourneyPlan] = {}

    def send(self, message: Any) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode(message))

    def start(self, run_id: int, source: bytes, fields: dict[str, Any], journey_fields: dict[str, Any]) -> None:
        task = asyncio.create_task(self._run(run_id, source, fields, journey_fields))
        self.tasks[run_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(run_id, None))

    async def _run(self, run_id: int, source: bytes, fields: dict[str, Any], journey_fields: dict[str, Any]) -> None:
        plan = None
        try:
            compiled = self._compiled(source)
            assert compiled.browser is not None
            plan = dataclasses.replace(compiled, **fields,
                                       browser=dataclasses.replace(compiled.browser, **journey_fields))
            result = await self.runner.run(plan)
        except Exception as exc:  # noqa: BLE001 - a bug: the prober records the run as failed
            _log_internal(f"the browser process's run {run_id}", exc, Redactor(plan.secrets if plan else ()))
            self.send(("failed", run_id, f"internal {type(exc).__name__} in the browser process"))
        else:
            self.send(("result", run_id, result))

    def _compiled(self, source: bytes) -> JourneyPlan:
        """The plan compiled from ``source`` (once per source)."""
        plan = self.plans.get(source)
        if plan is None:
            problems: list[str] = []
            plan = compile_browser_plan(pickle.loads(source), "browser process", problems)  # noqa: S301
            if plan is None:  # the prober compiled the same source without a problem
                raise RuntimeError("; ".join(problems))
            if len(self.plans) >= CACHED_PLANS:
                self.plans.clear()
            self.plans[source] = plan
        return plan

    def cancel(self, run_id: int) -> None:
        task = self.tasks.get(run_id)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        await self.runner.engine.close()


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, answers)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)

    settings: BrowserProcessSettings = await read_message(reader)
    worker = _Worker(settings, writer)
    _log_to_prober(worker.send, settings.log_level)
    try:
        while True:
            try:
                message = await read_message(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break  # the prober closed our stdin, exited or was killed
            if message[0] == "run":
                worker.start(*message[1:])
            elif message[0] == "cancel":
                worker.cancel(message[1])
            elif message[0] == "close":
                break
    finally:
        await worker.close()
        with contextlib.suppress(Exception):
            await writer.drain()
        writer.close()


def _log_to_prober(send: Any, level: int) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_Forward(send))
    root.setLevel(level)


def _ignore(signum: int, frame: Any) -> None:
    """A handler, not SIG_IGN: ignored signals would stay ignored in Chromium, which
    inherits the disposition; a handler is reset to the default in a started program."""


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _ignore)
    lower_this_process(NICENESS)
    asyncio.run(_serve())


if __name__ == "__main__":
    main()
