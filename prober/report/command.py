"""``prober report``: arguments → configuration → InfluxDB → report → stdout.

Without ``--write``, each day comes from its ``psd2_daily`` point when every interface
of the day has a usable one (see :mod:`prober.report.daily`), else from the raw
points; ``--recompute`` takes every day from the raw points. ``--write`` computes the
days from the raw points and writes them as ``psd2_daily`` points (default: yesterday
and today), which is what the systemd timer and the compose service run.

Exit codes: 0 the report (or the points) was written; 1 InfluxDB could not be reached or
refused the query or the write (one line naming the URL, never a secret); 2 a
configuration or usage error (no ``[influxdb]`` section, an unknown time zone, ``--from``
after ``--to``…).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prober.config.errors import ConfigError
from prober.config.loader import read
from prober.report.compute import DEFAULT_BENCHMARK, MARGIN_MS, Scope, build_report, day_bounds, streams_of
from prober.report.daily import Record, Stored, read_stored, report_records
from prober.report.formats import FORMATS, render
from prober.report.influx import QueryClient, QueryError, fetch
from prober.report.interfaces import catalog_from_config

EXIT_OK, EXIT_UNREACHABLE, EXIT_CONFIG = 0, 1, 2
MAX_DAYS = 1100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``prober report``."""
    parser.add_argument(
        "-c", "--config", required=True, help="TOML file or directory; its [influxdb] says where to read"
    )
    parser.add_argument("--from", dest="first", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                        help="first day (default: the first day of the quarter of --to)")
    parser.add_argument("--to", dest="last", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                        help="last day, included (default: today)")
    parser.add_argument("--site", action="append", help="only this site (repeatable)")
    parser.add_argument("--format", default="table", choices=list(FORMATS))
    parser.add_argument("--tz", default="UTC", help="time zone of the days, e.g. Europe/Paris (default UTC)")
    parser.add_argument("--benchmark", type=float, default=DEFAULT_BENCHMARK,
                        help=f"uptime %% the range is compared with (default {DEFAULT_BENCHMARK:g})")
    parser.add_argument("-o", "--output", default=None, help="write to this file instead of stdout")
    parser.add_argument("--write", action="store_true",
                        help="compute the days from the raw points and write them as psd2_daily points "
                             "(default days: yesterday and today)")
    parser.add_argument("--recompute", action="store_true",
                        help="compute every day from the raw points, ignoring the psd2_daily points")


def _usage_error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_CONFIG


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


RecordWriter = Callable[[Any, list[Record]], int]
"""Writes ``psd2_daily`` records to the InfluxDB of an ``[influxdb]`` section; how many
(the composition root passes :func:`prober.writer.records.write_records`); raises
:class:`~prober.report.influx.QueryError` when InfluxDB does not take them."""


def run_report(args: argparse.Namespace, out: TextIO | None = None, write: RecordWriter | None = None) -> int:
    """Run ``prober report`` with parsed arguments (``write`` is needed for ``--write``)."""
    try:
        loaded = read(args.config)  # reads InfluxDB only: no plans to compile
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    config = loaded.config
    if config.influxdb is None:
        return _usage_error(f"{args.config}: no [influxdb] section: prober report reads the data from it")
    try:
        tz = ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        return _usage_error(f"--tz: unknown time zone {args.tz!r} (use a name such as UTC or Europe/Paris)")
    if not 0 < args.benchmark <= 100:
        return _usage_error(f"--benchmark: {args.benchmark:g} is not a percentage in (0, 100]")
    now = time.time()
    last = args.last or datetime.fromtimestamp(now, tz).date()
    first = args.first or (last - timedelta(days=1) if args.write else _quarter_start(last))
    if first > last:
        return _usage_error(f"--from {first} is after --to {last}")
    if (last - first).days >= MAX_DAYS:
        return _usage_error(f"the range holds more than {MAX_DAYS} days")
    sites = tuple(args.site or ())
    configured = tuple((s.name, c.name, c.kind) for s in config.sites for c in s.checks
                       if c.enabled and (not sites or s.name in sites))
    catalog = catalog_from_config(config)
    bounds = day_bounds(first, last, tz)
    scope = Scope(first=first, last=last, tz=args.tz, bounds=bounds, now_ms=int(now * 1000),
                  benchmark_pct=args.benchmark, sites=sites, configured=configured, catalog=catalog,
                  maintenance=tuple(config.incidents.maintenance))
    client = QueryClient.from_config(config.influxdb)
    generated = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
    try:
        if args.write:
            if write is None:
                raise ValueError("--write needs a record writer")
            return _write(scope, client, config.influxdb, generated, write)
        stored = Stored() if args.recompute else read_stored(client, bounds, first, args.tz, sites, MARGIN_MS)
        expected = set(streams_of(scope, ()))
        whole = {d for d in range(len(bounds) - 1) if stored.streams(d) and expected <= stored.streams(d)}
        stored.keep_days(whole)
        fetched = fetch(client, bounds, sites, catalog, MARGIN_MS,
                        days=[d for d in range(len(bounds) - 1) if d not in whole])
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    report = build_report(fetched, scope, generated, stored.rows, stored.errors,
                          stored_streams={stream for stream, _ in stored.rows})
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as handle:
            render(report, args.format, handle)
    else:
        render(report, args.format, out or sys.stdout)
    return EXIT_OK


def _write(scope: Scope, client: QueryClient, influxdb: object, generated: str, write: RecordWriter) -> int:
    """``--write``: the days of ``scope`` from the raw points → ``psd2_daily`` points."""
    fetched = fetch(client, scope.bounds, scope.sites, scope.catalog, MARGIN_MS)
    report = build_report(fetched, scope, generated)
    written = write(influxdb, report_records(report.days, report.daily_errors, scope.tz, scope.first, scope.bounds,
                                             scope.now_ms))
    print(f"wrote {written} psd2_daily points: {scope.first} to {scope.last} ({scope.tz})", file=sys.stderr)
    return EXIT_OK
