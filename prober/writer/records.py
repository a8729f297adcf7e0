"""Points given as plain records, written once: for producers outside the writer (the
``psd2_daily`` points of ``prober report --write``), which do not run a daemon.

A record is ``(measurement, tags, fields, time_ms)``: tag values are strings (empty ones
left out, as in :mod:`prober.writer.points`), field values ``int`` (written with the
``i`` suffix), ``float``, ``str`` or ``bool``; keys in any order (written sorted).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping

from prober.config.influxdb import InfluxDBConfig
from prober.config.types import Precision
from prober.writer.points import PRECISION_DIVISOR, escape_field_string, escape_tag
from prober.writer.sinks import WriteStatus, make_sink

Record = tuple[str, Mapping[str, str], Mapping[str, object], int]
"""(measurement, tags, fields, time in epoch milliseconds)."""


class RecordWriteError(RuntimeError):
    """InfluxDB did not take the records; the message is the sink's (no secrets)."""


def _field(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    return escape_field_string(str(value))


def record_line(record: Record, precision: Precision = "ns") -> str:
    """One record as a line of line protocol."""
    measurement, tags, fields, time_ms = record
    tag_text = "".join(f",{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags.items()) if v)
    encoded = ((escape_tag(k), _field(v)) for k, v in sorted(fields.items()))
    field_text = ",".join(f"{k}={v}" for k, v in encoded if v is not None)
    return f"{escape_tag(measurement)}{tag_text} {field_text} {time_ms * 1_000_000 // PRECISION_DIVISOR[precision]}"


def write_records(config: InfluxDBConfig, records: Iterable[Record]) -> int:
    """Write ``records`` in one batch through the sink of ``config``'s API version; how many.

    Raises :class:`RecordWriteError` when InfluxDB refuses them or cannot be reached.
    """
    lines = [record_line(r, config.precision) for r in records]
    if not lines:
        return 0

    async def send() -> None:
        sink = make_sink(config)
        await sink.start()
        try:
            result = await sink.write("\n".join(lines), len(lines))
        finally:
            await sink.close()
        if result.status is not WriteStatus.OK:
            raise RecordWriteError(f"InfluxDB at {config.url} did not take {len(lines)} points: {result.message}")

    asyncio.run(send())
    return len(lines)
