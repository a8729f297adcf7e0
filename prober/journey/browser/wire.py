"""Messages between the prober and its browser process: length-prefixed pickles on pipes.

Both ends are the same installed prober (the browser process is started from the
prober's own interpreter), so pickle is safe here and carries the typed results as
they are. A frame is a 4-byte big-endian length and that many bytes of pickle.

What goes to the browser process: one :class:`BrowserProcessSettings` first, then
``("run", run_id, source)``, ``("cancel", run_id)`` and ``("close",)``. What comes back:
``("result", run_id, JourneyResult)`` and ``("log", fields)`` (a log record of the
browser process, re-emitted by the prober's own logging).
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LENGTH = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024
"""A frame longer than this is a broken pipe's garbage, not a message."""


@dataclass(frozen=True, slots=True)
class BrowserProcessSettings:
    """How the browser process runs its browser and keeps evidence."""

    executable: str
    max_concurrency: int
    traces_dir: Path | None
    evidence_dir: Path | None
    evidence_runs: int = 0
    evidence_max_bytes: int = 0
    log_level: int = 20


def encode(message: Any) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(payload)) + payload


async def read_message(reader: asyncio.StreamReader) -> Any:
    """The next message; raises :class:`asyncio.IncompleteReadError` at the end of the pipe."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    if length > MAX_FRAME:
        raise ValueError(f"a frame of {length} bytes from the other end of the browser pipe")
    return pickle.loads(await reader.readexactly(length))  # noqa: S301 - our own process at the other end
