"""Field types shared by every configuration section.

Every section is a pydantic model built with :data:`STRICT`: unknown keys are errors,
values are never coerced across types (``"10"`` is not an int), and durations are written
the way people write them (``"30s"``, ``"500ms"``, ``"1m30s"``) and held as float seconds,
sizes likewise (``"512KiB"``, ``"10MiB"``) and held as int bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict

Precision = Literal["ns", "us", "ms", "s"]
"""Timestamp precision of InfluxDB line protocol (the ``precision`` of ``[influxdb]``)."""

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


def format_duration(seconds: float) -> str:
    """``0.1`` → ``"100ms"``, ``604800`` → ``"7d"``: the largest unit that divides it."""
    for unit in ("d", "h", "m", "s"):
        count = seconds / _UNIT_SECONDS[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    return f"{seconds * 1000:g}ms"


@dataclass(frozen=True, slots=True)
class DurationRange:
    """Bounds of a duration field, checked when it is parsed.

    No duration is finer than a millisecond or longer than a week: the scheduler turns
    intervals into dates, timers and lags in milliseconds, and a value outside these
    bounds is a typo (``"100000000d"``, ``"0.0000001ms"``), never an intent.
    """

    what: str
    low: float
    high: float

    def __call__(self, value: object) -> float:
        seconds = parse_duration(value)
        if not self.low <= seconds <= self.high:
            raise ValueError(
                f"{self.what} {value!r} is out of range: allowed "
                f"{format_duration(self.low)} to {format_duration(self.high)}"
            )
        return seconds


ANY_RANGE = DurationRange("duration", 0.001, 7 * 86400.0)
INTERVAL_RANGE = DurationRange("interval", 0.1, 7 * 86400.0)
TIMEOUT_RANGE = DurationRange("timeout", 0.01, 86400.0)

Duration = Annotated[float, BeforeValidator(ANY_RANGE)]
"""A duration written as a string, held as seconds: 1ms to 7d."""

Interval = Annotated[float, BeforeValidator(INTERVAL_RANGE)]
"""How often a check runs: 100ms to 7d."""

Timeout = Annotated[float, BeforeValidator(TIMEOUT_RANGE)]
"""A check's, site's or step's timeout: 10ms to 1d (a check's also at most its interval)."""


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMG]i?B|B)", re.IGNORECASE)
_UNIT_BYTES = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}
MAX_BYTE_SIZE = 1 << 30
"""Sizes are held in memory (a response body), so none may exceed 1 GiB."""


def parse_size(value: object) -> int:
    """Turn ``"512KiB"``, ``"10MiB"`` or ``"1MB"`` into bytes (KiB = 1024, KB = 1000).

    Numbers are refused, as for durations: a bare ``10`` could mean bytes or megabytes.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected a size string such as \"10MiB\", got {type(value).__name__} {value!r}")
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"invalid size {value!r} (write e.g. \"512KiB\", \"10MiB\", \"1GiB\")")
    size = int(float(match.group(1)) * _UNIT_BYTES[match.group(2).lower()])
    if size <= 0:
        raise ValueError(f"size {value!r} must be greater than zero")
    if size > MAX_BYTE_SIZE:
        raise ValueError(f"size {value!r} is over 1GiB")
    return size


def format_size(size: int) -> str:
    """``10485760`` → ``"10 MiB"``, ``1536`` → ``"1.5 KiB"``, ``999`` → ``"999 B"``."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.4g} {unit}"
    return f"{size} B"


ByteSize = Annotated[int, BeforeValidator(parse_size)]
"""A size in bytes > 0 (at most 1 GiB) written as a string: ``"512KiB"``, ``"10MiB"``."""


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


def secret_from_file(
    data: Any, name: str, what: str, *, required: bool = False, parse: Callable[[str], Any] | None = None
) -> Any:
    """Before validation of a section: read ``NAME_file`` into ``NAME``.

    The one way every section takes a secret from a file (Docker/Kubernetes secrets,
    systemd credentials): the file is read once, at load, and its content validated as
    if it had been written inline (``parse`` turns the text into the field's shape).
    ``NAME_file`` stays in the section for logs. Errors name the keys, never the content.
    """
    if not isinstance(data, dict):
        return data
    key = f"{name}_file"
    both = f"{what} needs exactly one of `{name}`, `{key}`"
    if key not in data:
        if required and name not in data:
            raise ValueError(both)
        return data
    if name in data:
        raise ValueError(both if required else f"set either `{name}` or `{key}`, not both")
    path = data[key]
    if not isinstance(path, str):
        raise ValueError(f"`{key}` must be a file path string")
    try:
        text = read_secret_file(path)
    except ValueError as exc:
        raise ValueError(f"`{key}`: {exc}") from None
    return {**data, name: parse(text) if parse else text}


def valid_regex(value: str | None) -> str | None:
    """A field validator: ``value`` compiles as a regular expression (None passes)."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


def exactly_one(obj: object, fields: tuple[str, ...], what: str) -> str:
    """The one of ``fields`` that ``obj`` sets (not None, not False); a ValueError naming
    ``what`` and the choices when none or several are set."""
    present = [f for f in fields if getattr(obj, f) not in (None, False)]
    if len(present) != 1:
        listed = ", ".join(f"`{f}`" for f in fields)
        raise ValueError(f"{what} needs exactly one of {listed}, got {len(present)}")
    return present[0]
