"""The daemon's event loop: uvloop by default, asyncio's own on request."""

from __future__ import annotations

import asyncio

import pytest

from prober import eventloop

pytestmark = pytest.mark.exclusive  # event-loop lag bounds


async def _name() -> str:
    await asyncio.sleep(0)
    return eventloop.running_loop_name()


def test_runs_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventloop.ENV, raising=False)
    assert eventloop.run(_name()) == "uvloop"


def test_asyncio_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV, "asyncio")
    assert eventloop.run(_name()) == "asyncio"
