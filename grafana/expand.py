"""Expand Grafana's macros and template variables in InfluxQL, the way Grafana does.

Grafana's InfluxDB datasource (InfluxQL mode, raw queries) rewrites a query before it
sends it to ``/query``:

* ``$timeFilter`` becomes ``time >= now() - 6h`` for a relative range ending now,
  ``time >= now() - 6h and time <= now() - 1h`` for a relative range ending earlier, and
  ``time >= 1700000000000ms and time <= 1700003600000ms`` for an absolute range;
* ``$__interval`` and ``$interval`` become the panel's interval (``10s``, ``1m``…):
  the range divided by the panel's data points (about its width in pixels), rounded
  to a "nice" value and never below the datasource's minimum interval (``timeInterval``,
  ``10s`` in our provisioning); ``$__interval_ms`` is the same in milliseconds;
* ``$__from`` / ``$__to`` are the range in epoch milliseconds, ``$__range`` /
  ``$__range_s`` / ``$__range_ms`` its length;
* a template variable ``$site`` / ``${site}`` / ``[[site]]`` becomes its value. For the
  InfluxDB datasource a multi-value or include-All variable is regex-escaped, and several
  values are joined as ``(a|b)``, which is why filters are written
  ``"site" =~ /^$site$/``; "All" becomes the variable's ``allValue`` (raw, ``.*`` in our
  dashboards) or, without one, every value joined the same way. A single-value variable
  that is neither multi nor include-All is inserted as it is. An explicit format
  (``${site:regex}``, ``:pipe``, ``:csv``, ``:raw``, ``:singlequote``, ``:doublequote``)
  overrides that.

Unknown variables are left as they are, as Grafana does (and ``grafana/check.py``
reports them). :func:`calculate_interval` reproduces Grafana's interval computation
(``rangeutil.calculateInterval`` and ``kbn.roundInterval``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "ALL",
    "TimeRange",
    "Variable",
    "calculate_interval",
    "escape_regex",
    "expand",
    "format_interval",
    "parse_interval",
    "referenced_variables",
    "time_filter",
    "variables_of",
]

ALL = "$__all"
"""The value Grafana stores for the "All" option of a variable."""

# Grafana's variable syntax: $name, [[name]] / [[name:fmt]], ${name} / ${name:fmt}.
VARIABLE_RE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")

_REGEX_SPECIALS = re.compile(r"[\\^$*+?.()|\[\]{}/]")
_RELATIVE = re.compile(r"^now(?:-(\d+)([smhdwMy]))?$")
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "y": 31_536_000_000}

BUILTINS: frozenset[str] = frozenset(
    {
        "timeFilter", "__interval", "interval", "__interval_ms", "__from", "__to", "__range",
        "__range_s", "__range_ms", "__rate_interval", "__timeFilter", "__dashboard", "__org",
        "__user", "__name", "__field", "__series", "__value", "__data", "__cell", "col", "m",
        "measurement", "timeFilterUnix",
    }
)
"""Names Grafana fills itself; ``tag_*`` and ``col_*`` (alias patterns) are built in too."""


def is_builtin(name: str) -> bool:
    return name in BUILTINS or name.startswith(("tag_", "col_", "__"))


def escape_regex(value: str) -> str:
    """Grafana's ``escapeRegex`` for InfluxQL: backslash before regex specials and ``/``."""
    return _REGEX_SPECIALS.sub(lambda m: "\\" + m.group(0), value)


def parse_interval(text: str) -> int:
    """``"10s"`` → 10000 (milliseconds); accepts ms, s, m, h, d, w, y and a leading ``>``/``>=``."""
    match = re.fullmatch(r"\s*>?=?\s*(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)\s*", text)
    if not match:
        raise ValueError(f"not an interval: {text!r}")
    return int(float(match.group(1)) * _UNITS_MS[match.group(2)])


def format_interval(ms: int) -> str:
    """Milliseconds as Grafana writes an interval: the largest unit that divides it."""
    if ms <= 0:
        raise ValueError(f"interval must be positive, got {ms} ms")
    for unit in ("y", "w", "d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


_ROUND_STEPS: tuple[tuple[int, int], ...] = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000), (3500, 2000),
    (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000), (45000, 30000), (90000, 60000),
    (210000, 120000), (450000, 300000), (750000, 600000), (1050000, 900000), (1500000, 1200000),
    (2700000, 1800000), (5400000, 3600000), (9000000, 7200000), (16200000, 10800000),
    (32400000, 21600000), (86400000, 43200000), (604800000, 86400000), (1814400000, 604800000),
    (3628800000, 2592000000),
)


def round_interval(ms: float) -> int:
    """Grafana's ``kbn.roundInterval``: a raw interval rounded to a nice one."""
    for bound, nice in _ROUND_STEPS:
        if ms < bound:
            return nice
    return 31536000000


def calculate_interval(range_ms: int, max_data_points: int = 1000, min_interval: str | None = "10s") -> str:
    """The ``$__interval`` Grafana uses for a range drawn on ``max_data_points`` points.

    ``min_interval`` is the panel's or the datasource's minimum (``timeInterval``).
    """
    raw = round_interval(range_ms / max(max_data_points, 1))
    if min_interval:
        raw = max(raw, parse_interval(min_interval))
    return format_interval(raw)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A dashboard time range, as Grafana's ``rangeRaw``.

    Each end is ``"now"``, ``"now-6h"`` (relative) or epoch milliseconds (absolute);
    ``now_ms`` is the moment the relative ends are resolved against for ``$__from``,
    ``$__to`` and the interval.
    """

    start: str | int = "now-1h"
    end: str | int = "now"
    now_ms: int | None = None

    def _resolve(self, value: str | int) -> int:
        if isinstance(value, int):
            return value
        match = _RELATIVE.match(value)
        if not match:
            raise ValueError(f"unsupported time {value!r}: use now, now-<n><unit> or epoch milliseconds")
        now = time.time_ns() // 1_000_000 if self.now_ms is None else self.now_ms
        if match.group(1) is None:
            return now
        unit = match.group(2)
        size = 30 * 86_400_000 if unit == "M" else _UNITS_MS[unit]
        return now - int(match.group(1)) * size

    @property
    def from_ms(self) -> int:
        return self._resolve(self.start)

    @property
    def to_ms(self) -> int:
        return self._resolve(self.end)

    @property
    def range_ms(self) -> int:
        return self.to_ms - self.from_ms


def _influx_time(value: str | int, is_end: bool) -> str:
    """Grafana's ``getInfluxTime``: ``now()``, ``now() - 6h`` or ``<epoch ms>ms``."""
    if isinstance(value, int):
        return f"{value}ms"
    if value == "now":
        return "now()"
    match = _RELATIVE.match(value)
    if not match:
        raise ValueError(f"unsupported time {value!r}")
    amount, unit = match.groups()
    if unit in ("M", "y", "w"):  # InfluxQL durations stop at weeks; Grafana resolves these
        days = {"M": 30, "y": 365, "w": 7}[unit] * int(amount)
        return f"now() - {days}d"
    return f"now() - {amount}{unit}"


def time_filter(time_range: TimeRange) -> str:
    """What ``$timeFilter`` becomes for ``time_range``."""
    start = _influx_time(time_range.start, False)
    end = _influx_time(time_range.end, True)
    if end == "now()":
        return f"time >= {start}"
    return f"time >= {start} and time <= {end}"


@dataclass(frozen=True, slots=True)
class Variable:
    """A template variable's definition (what decides how it is formatted) and its current value.

    ``value`` is a string, a list of strings, or :data:`ALL`; ``options`` are the values
    the variable's query returned (what "All" expands to without an ``allValue``).
    """

    name: str
    value: str | Sequence[str] = ALL
    multi: bool = False
    include_all: bool = False
    all_value: str | None = None
    options: Sequence[str] = field(default_factory=tuple)


def variables_of(dashboard: Mapping, values: Mapping[str, str | Sequence[str]] | None = None,
                 options: Mapping[str, Sequence[str]] | None = None) -> dict[str, Variable]:
    """The dashboard's template variables (except datasources) with chosen values.

    A variable missing from ``values`` takes "All" when it has the option, otherwise its
    first option (or its saved ``current`` value).
    """
    values = values or {}
    options = options or {}
    out: dict[str, Variable] = {}
    for item in dashboard.get("templating", {}).get("list", []):
        if item.get("type") == "datasource":
            continue
        name = item["name"]
        include_all = bool(item.get("includeAll"))
        opts = tuple(options.get(name, ()))
        if name in values:
            value = values[name]
        elif include_all:
            value = ALL
        elif opts:
            value = opts[0]
        else:
            current = item.get("current", {}).get("value", "")
            value = current
        if item.get("type") in ("constant", "textbox") and name not in values:
            value = item.get("query", "")
        out[name] = Variable(
            name=name,
            value=value,
            multi=bool(item.get("multi")),
            include_all=include_all,
            all_value=item.get("allValue") or None,
            options=opts,
        )
    return out


def _format(values: list[str], fmt: str | None, variable: Variable) -> str:
    if fmt is None:
        # The InfluxDB datasource's interpolateQueryExpr.
        if len(values) == 1 and not variable.multi and not variable.include_all:
            return values[0]
        if len(values) == 1 and _is_number(values[0]):
            return values[0]
        escaped = [escape_regex(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt == "regex":
        escaped = [escape_regex(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt == "pipe":
        return "|".join(values)
    if fmt == "csv":
        return ",".join(values)
    if fmt in ("raw", "text"):
        return ",".join(values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    raise ValueError(f"unsupported variable format {fmt!r} (${{{variable.name}:{fmt}}})")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _value_of(variable: Variable, fmt: str | None) -> str:
    value = variable.value
    if value == ALL or (isinstance(value, (list, tuple)) and list(value) == [ALL]):
        if variable.all_value is not None and fmt not in ("text",):
            return variable.all_value  # custom all values are inserted raw
        values = list(variable.options)
        if not values:
            raise ValueError(f"variable {variable.name!r} is All without allValue and has no options")
    elif isinstance(value, str):
        values = [value]
    else:
        values = list(value)
    return _format(values, fmt, variable)


def expand(
    query: str,
    variables: Mapping[str, Variable] | None = None,
    *,
    time_range: TimeRange | None = None,
    interval: str | None = None,
    max_data_points: int = 1000,
    min_interval: str | None = "10s",
) -> str:
    """``query`` as Grafana sends it to InfluxDB.

    ``interval`` forces ``$__interval``; by default it is computed from ``time_range``,
    ``max_data_points`` and ``min_interval`` like Grafana does.
    """
    variables = variables or {}
    time_range = time_range or TimeRange()
    if interval is None:
        interval = calculate_interval(time_range.range_ms, max_data_points, min_interval)
    interval_ms = parse_interval(interval)
    builtins: dict[str, str] = {
        "timeFilter": time_filter(time_range),
        "__timeFilter": time_filter(time_range),
        "__interval": interval,
        "interval": interval,
        "__interval_ms": str(interval_ms),
        "__rate_interval": format_interval(max(4 * parse_interval(min_interval or "10s"), interval_ms)),
        "__from": str(time_range.from_ms),
        "__to": str(time_range.to_ms),
        "__range_ms": str(time_range.range_ms),
        "__range_s": str(time_range.range_ms // 1000),
        "__range": f"{time_range.range_ms // 1000}s",
    }

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in builtins:
            return builtins[name]
        variable = variables.get(name)
        if variable is None:
            return match.group(0)
        return _value_of(variable, fmt)

    return VARIABLE_RE.sub(substitute, query)


def referenced_variables(text: str) -> set[str]:
    """Names of the variables a query or title refers to (built-ins included)."""
    return {m.group(1) or m.group(2) or m.group(4) for m in VARIABLE_RE.finditer(text)}
