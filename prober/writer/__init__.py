"""Writing results to InfluxDB without losing them.

* :mod:`~prober.writer.points` — line protocol for the schema contract (``check``,
  ``step``, ``incident``, ``prober``, ``certificate`` measurements);
* :mod:`~prober.writer.sinks` — the v2 (``influxdb-client``) and v1 (``/write``) sinks and
  how their answers are classified (ok / retry / rejected / partial);
* :mod:`~prober.writer.incidents` — :class:`IncidentPoints`, the incident service's
  subscriber that writes ``incident`` points;
* :mod:`~prober.writer.spool` — the durable SQLite spool of unwritten batches;
* :mod:`~prober.writer.backlog` — where unwritten points wait (the spool, memory while it
  fails) and what becomes of each batch sent;
* :mod:`~prober.writer.queue` — :class:`BatchQueue`, new batches sent directly;
* :mod:`~prober.writer.replay` — :class:`Replay`, the task that writes what waits, with backoff;
* :mod:`~prober.writer.settings` — :class:`WriterSettings`, the writer's tuning in one object;
* :mod:`~prober.writer.writer` — :class:`ResultWriter`, which ties them together (the journal).
"""

from prober.writer.incidents import IncidentPoints
from prober.writer.points import (
    certificate_point,
    escape_field_string,
    escape_tag,
    incident_point,
    journey_lines,
    prober_point,
)
from prober.writer.settings import WriterSettings
from prober.writer.sinks import InfluxV1Sink, InfluxV2Sink, Sink, WriteResult, WriteStatus, make_sink
from prober.writer.spool import Spool
from prober.writer.stats import WriterStats
from prober.writer.writer import ResultWriter

__all__ = [
    "IncidentPoints",
    "InfluxV1Sink",
    "InfluxV2Sink",
    "ResultWriter",
    "Sink",
    "Spool",
    "WriteResult",
    "WriteStatus",
    "WriterSettings",
    "WriterStats",
    "certificate_point",
    "escape_field_string",
    "escape_tag",
    "incident_point",
    "journey_lines",
    "make_sink",
    "prober_point",
]
