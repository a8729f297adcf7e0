"""The event loop the prober runs on: uvloop, or asyncio's own on request.

uvloop (libuv) is a declared dependency; it spends
less CPU per probe on sockets, timers and callbacks than asyncio's pure-Python loop
(``python benchmarks/daemon.py --baseline DIR`` compares). ``PROBER_EVENT_LOOP=asyncio``
chooses asyncio's loop, e.g. to tell a loop problem from a prober one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

ENV = "PROBER_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """``uvloop.new_event_loop`` unless ``PROBER_EVENT_LOOP=asyncio`` or uvloop is missing."""
    if os.environ.get(ENV, "").strip().lower() != "asyncio":
        try:
            import uvloop
        except ImportError:  # installed without its dependencies on a platform uvloop lacks
            pass
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def running_loop_name() -> str:
    """``uvloop`` or ``asyncio``: the loop the caller runs on (for the start-up log)."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop of :func:`loop_factory`."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
