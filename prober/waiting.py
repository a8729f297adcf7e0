"""Waiting for an event with a time limit, without losing a cancellation; stopping a
background task.

``asyncio.wait_for`` on Python 3.11 can swallow a cancellation that races with the
awaited event being set; a background loop built on it may then never stop.
``asyncio.timeout`` does not have that flaw.
"""

from __future__ import annotations

import asyncio
import contextlib


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; True when it is set."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancel a background ``task`` (if any) and wait until it has stopped."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
