"""Field types shared by every configuration section.

Every section is a pydantic model built with :data:`STRICT`: unknown keys are errors,
values are never coerced across types (``"10"`` is not an int), and durations are written
the way people write them (``"30s"``, ``"500ms"``, ``"1m30s"``) and held as float seconds.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, ConfigDict

STRICT = ConfigDict(extra="forbid", strict=True, frozen=True, hide_input_in_errors=True)
"""Model config for every configuration section. Errors never echo the input: it may be
a password, a token or a webhook URL."""

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Turn ``"1m30s"``, ``"250ms"`` or ``"2h"`` into seconds.

    Numbers are refused on purpose: a bare ``30`` could mean seconds or milliseconds.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected a duration string such as \"30s\", got {type(value).__name__} {value!r}")
    text = value.strip()
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {value!r} (write e.g. \"30s\", \"500ms\", \"1m30s\")")
    return total


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be greater than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(_positive_duration)]
"""A duration > 0 written as a string, held as seconds."""

DurationOrZero = Annotated[float, BeforeValidator(parse_duration)]
"""A duration ≥ 0 written as a string, held as seconds."""


def read_secret_file(path: str) -> str:
    """Read a secret from a file (Docker/Kubernetes secrets, systemd credentials).

    Trailing newlines are stripped. Raises ``ValueError`` naming the path (never the
    content) when the file cannot be read.
    """
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"secret file {path!r} is not UTF-8 text") from None
