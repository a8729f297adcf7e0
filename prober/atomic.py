"""Replacing a state file so that a crash leaves the old or the new one, never a mix.

The data goes to a temporary file in the same directory, is flushed to disk (fsync),
renamed over the target, and the directory is flushed too so that the rename itself
survives a power loss. ``mode`` applies to the new file whatever a leftover temporary
file had (0o600 for files holding secrets).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, dir_mode: int = 0o755) -> None:
    """Replace ``path`` with ``data`` atomically; raises ``OSError`` (nothing half-written)."""
    path.parent.mkdir(mode=dir_mode, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:  # a write may be short (disk or file size limit): the next one raises
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
