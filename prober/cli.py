"""The ``prober`` command line: validate, check, run, bank, demo, report.

Exit codes: 0 success, 1 a check failed, 2 a configuration or usage error. Errors are one
line each, never a traceback.

Logging: ``--log-level``/``--log-format`` before the command apply to every command
(default ``warning``, ``plain``). ``prober run`` takes them after the command too, and
reads ``[daemon] log_level``/``log_format``: the command's option wins over the global
one, and either wins over ``[daemon]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from prober.logs import setup_logging

if TYPE_CHECKING:
    from prober.config.model import Config
    from prober.daemon.sharding import Share
    from prober.journey.plan import JourneyPlan
    from prober.loading import LoadedConfig
    from prober.results import JourneyResult

# Each command imports what it needs when it runs, and a command's options are added only
# when that command is used (see _Command): `prober --help` and `prober validate` start
# without the HTTP client, the notifiers or the simulated bank (benchmarks/cli_startup.py).

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13
"""The reader of our output went away (``prober check --json | head -1``), as a shell reports SIGPIPE."""
CHECK_CONCURRENCY = 16
LOG_LEVELS = ["debug", "info", "warning", "error"]
LOG_FORMATS = ["plain", "json"]
DEFAULT_LOG_LEVEL = "warning"
"""Of every command but ``run``, whose default is ``[daemon] log_level``."""


def _load_or_report(path: str) -> LoadedConfig | None:
    from prober.config.errors import ConfigError
    from prober.loading import load

    try:
        return load(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return None


def _select(plans: list[JourneyPlan], sites: list[str], checks: list[str]) -> list[JourneyPlan] | str:
    known_sites = {p.site for p in plans}
    known_checks = {p.check for p in plans}
    for name in sites:
        if name not in known_sites:
            return f"no site named {name!r} (sites: {', '.join(sorted(known_sites)) or 'none'})"
    for name in checks:
        if name not in known_checks:
            return f"no check named {name!r} (checks: {', '.join(sorted(known_checks)) or 'none'})"
    return [p for p in plans if (not sites or p.site in sites) and (not checks or p.check in checks)]


async def run_once(
    plans: Sequence[JourneyPlan], concurrency: int = CHECK_CONCURRENCY, config: Config | None = None
) -> list[JourneyResult]:
    """Run every plan once, a few at a time, results in plan order (browser checks in the
    one browser of the process, closed at the end; ``config``'s ``[daemon]`` sizes it)."""
    import asyncio

    from prober.config.model import Config
    from prober.loading import journey_runner

    limit = asyncio.Semaphore(concurrency)
    runner = journey_runner(config or Config())

    async def one(plan: JourneyPlan) -> JourneyResult:
        async with limit:
            return await runner(plan)

    try:
        return list(await asyncio.gather(*(one(p) for p in plans)))
    finally:
        await runner.close()


def cmd_validate(args: argparse.Namespace) -> int:
    loaded = _load_or_report(args.config)
    if loaded is None:
        return EXIT_CONFIG
    from prober.config.access import exposure_problems

    exposed = exposure_problems(loaded.config, args.config)  # what `prober run` would refuse
    for problem in exposed:
        print(f"config error: {problem}", file=sys.stderr)
    if exposed:
        return EXIT_CONFIG
    import time

    from prober.certificates.validation import check_configured

    expired, expiring = check_configured(loaded.config, loaded.site_files, time.time())
    for problem in expired:
        print(f"config error: {problem}", file=sys.stderr)
    if expired:
        return EXIT_CONFIG
    for warning in expiring:
        print(f"warning: {warning}")
    sites = len(loaded.config.sites)
    print(f"{args.config}: valid ({sites} site{'s' * (sites != 1)}, {len(loaded.plans)} enabled checks)")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    loaded = _load_or_report(args.config)
    if loaded is None:
        return EXIT_CONFIG
    selected = _select(loaded.plans, args.site or [], args.check or [])
    if isinstance(selected, str):
        print(f"error: {selected}", file=sys.stderr)
        return EXIT_CONFIG
    from prober import eventloop

    results = eventloop.run(run_once(selected, config=loaded.config))
    if args.json:
        from prober.output.jsonl import to_json_line

        for result in results:
            print(to_json_line(result))
    else:
        from prober.output.table import render_table

        render_table(results, sys.stdout)
    return EXIT_OK if all(r.success for r in results) else EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    from prober.daemon.lifecycle import run

    # The command's own option, then the global one; without either, [daemon] decides.
    return run(args.config, log_level=args.run_log_level or args.log_level,
               log_format=args.run_log_format or args.log_format,
               shard=args.shard, workers=args.workers, worker=args.worker)


def _share(level: str) -> Callable[[str], Share]:
    """An argparse type: ``K/N`` at ``level`` (shard, worker)."""

    def parse(text: str) -> Share:
        from prober.daemon.sharding import parse_share  # when a value is given: `run --help` needs no daemon

        try:
            return parse_share(text, level)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _workers(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 256:
        raise argparse.ArgumentTypeError(f"expected a number of processes from 1 to 256, got {text!r}")
    return int(text)


def cmd_demo(args: argparse.Namespace) -> int:
    from prober.daemon.demo import run_demo

    if args.log_level is None:  # the demo shows incidents itself: the daemon's warnings would repeat them
        setup_logging("error", args.log_format or "plain")
    return run_demo(
        config=args.config, duration=args.duration, scenario=args.scenario, interval=args.interval,
        port=args.port, time_scale=args.time_scale, tls_cert_days=args.tls_cert_days,
    )


def cmd_bank(args: argparse.Namespace) -> int:
    from prober.simbank import run_bank

    return run_bank(args.host, args.port, scenario=args.scenario, seed=args.seed, time_scale=args.time_scale,
                    profile=args.profile, keys_dir=args.keys, tls_cert_days=args.tls_cert_days, tls_dir=args.tls_dir)


def _scenarios_epilog(default: str) -> str:
    """The ``--scenario`` values and what each plays, from the bank's table of scenarios."""
    from prober.simbank.scenarios import scenario_listing

    lines = ["scenarios (--scenario NAME):"]
    for name, description in scenario_listing():
        label = f"  {name}{' (default)' if name == default else ''}"
        lines.extend(textwrap.wrap(description, width=92, initial_indent=f"{label:30}", subsequent_indent=" " * 30,
                                   break_on_hyphens=False))
    return "\n".join(lines)


def _time_scale_argument(parser: argparse.ArgumentParser) -> None:
    from prober.simbank.scenarios import DEFAULT_TIME_SCALE, HOUR

    parser.add_argument(
        "--time-scale",
        type=_seconds_per_hour,
        default=DEFAULT_TIME_SCALE,
        metavar="S",
        help=f"real seconds one simulated hour of the scenario lasts (default {DEFAULT_TIME_SCALE * HOUR:g})",
    )


def _seconds_per_hour(text: str) -> float:
    from prober.simbank.scenarios import HOUR

    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds greater than zero, got {text!r}")
    return seconds / HOUR


def cmd_report(args: argparse.Namespace) -> int:
    from prober.report.command import run_report

    return run_report(args, write=_write_psd2_daily)


def _write_psd2_daily(influxdb: object, records: list) -> int:
    """``prober report --write``'s points through the writer's sinks (the report package
    computes them and does not import the writer)."""
    from prober.report.influx import QueryError
    from prober.writer.records import RecordWriteError, write_records

    try:
        return write_records(influxdb, records)
    except RecordWriteError as exc:
        raise QueryError(str(exc)) from None


class _Command(argparse.ArgumentParser):
    """The parser of one command, whose options are added by ``configure`` only when the
    command is used (parsed, or its help printed).

    ``prober --help`` lists the commands without adding any command's options, and each
    command adds only its own: the demo's and the bank's list the simulated bank's
    scenarios, the report's come from :mod:`prober.report.command`, and importing those
    is most of what a start costs.
    """

    def __init__(self, *args: Any, configure: Callable[[argparse.ArgumentParser], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._configure = configure

    def _configured(self) -> None:
        if self._configure is not None:
            configure, self._configure = self._configure, None
            configure(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._configured()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._configured()
        return super().format_usage()

    def format_help(self) -> str:
        self._configured()
        return super().format_help()


def _config_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="TOML file or directory of *.toml files")


def _validate_options(p: argparse.ArgumentParser) -> None:
    _config_argument(p)
    p.set_defaults(func=cmd_validate)


def _check_options(p: argparse.ArgumentParser) -> None:
    _config_argument(p)
    p.add_argument("--site", action="append", help="only this site (repeatable)")
    p.add_argument("--check", action="append", help="only this check (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    p.set_defaults(func=cmd_check)


def _run_options(p: argparse.ArgumentParser) -> None:
    _config_argument(p)
    p.add_argument("--log-level", dest="run_log_level", default=None, choices=LOG_LEVELS,
                   help="overrides [daemon] log_level and the global --log-level")
    p.add_argument("--log-format", dest="run_log_format", default=None, choices=LOG_FORMATS,
                   help="overrides [daemon] log_format and the global --log-format")
    p.add_argument("--shard", type=_share("shard"), default=None, metavar="K/N",
                   help="run only share K of N of the sites (one instance per machine, same config everywhere)")
    p.add_argument("--workers", type=_workers, default=None, metavar="N",
                   help="split the sites among N worker processes; overrides [daemon] workers")
    p.add_argument("--worker", type=_share("worker"), default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_run)


def _demo_options(p: argparse.ArgumentParser) -> None:
    from prober.simbank.scenarios import NO_SCENARIO, TOUR

    p.epilog, p.formatter_class = _scenarios_epilog(TOUR), argparse.RawDescriptionHelpFormatter
    p.add_argument("-c", "--config", default=None, help="configuration to run instead of the embedded default")
    p.add_argument("--duration", type=float, default=None,
                   help="stop after this many seconds (default: when the tour ends; never for the others)")
    p.add_argument("--scenario", default=TOUR, metavar="NAME",
                   help=f"what the simulated bank plays (below; default {TOUR}, {NO_SCENARIO} for a quiet bank)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between runs of each check (default 2)")
    _time_scale_argument(p)
    p.add_argument("--port", type=int, default=8480, help="port of the simulated bank (a free one if taken)")
    _tls_cert_days_argument(p)
    p.set_defaults(func=cmd_demo)


def _bank_options(p: argparse.ArgumentParser) -> None:
    from prober.simbank.scenarios import NO_SCENARIO

    p.epilog, p.formatter_class = _scenarios_epilog(NO_SCENARIO), argparse.RawDescriptionHelpFormatter
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8480)
    p.add_argument("--scenario", default=NO_SCENARIO, metavar="NAME", help="what the bank plays (below)")
    _time_scale_argument(p)
    p.add_argument("--seed", type=int, default=None, help="seed for random faults")
    p.add_argument("--profile", default=None, choices=["berlin-group", "stet", "uk-open-banking"],
                   help="speak this PSD2 standard: its routes, signatures, private_key_jwt (needs --keys)")
    p.add_argument("--keys", default=None, metavar="DIR",
                   help="with --profile: where the TPP's test keys and the example's env file go")
    _tls_cert_days_argument(p)
    p.add_argument("--tls-dir", default="var/bank-tls", metavar="DIR",
                   help="with --tls-cert-days: where the test CA (bank-ca.pem) and the bank's certificate go "
                        "(default var/bank-tls)")
    p.set_defaults(func=cmd_bank)


def _tls_cert_days_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tls-cert-days", type=_days, default=None, metavar="N",
                        help="serve HTTPS with a certificate that expires in N days (negative: expired N days ago), "
                             "issued by a test CA")


def _days(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days, got {text!r}") from None


def _report_options(p: argparse.ArgumentParser) -> None:
    from prober.report.command import add_arguments

    add_arguments(p)
    p.set_defaults(func=cmd_report)


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "validate": ("check a configuration and exit (0 valid, 2 invalid)", _validate_options),
    "check": ("run each selected check once and report (0 all pass, 1 any fail)", _check_options),
    "run": ("the daemon: run every check on its schedule until SIGTERM (SIGHUP reloads)", _run_options),
    "demo": ("simulated bank + prober + live view, on the embedded default config", _demo_options),
    "bank": ("run the simulated bank", _bank_options),
    "report": ("PSD2 availability and performance per site × interface × day, from InfluxDB", _report_options),
}
"""Each command: its line in ``prober --help``, and what adds its options (see :class:`_Command`)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prober", description="Synthetic availability prober for banks.")
    parser.add_argument("--log-level", default=None, choices=LOG_LEVELS,
                        help=f"default {DEFAULT_LOG_LEVEL}; for `run`, [daemon] log_level (default info)")
    parser.add_argument("--log-format", default=None, choices=LOG_FORMATS,
                        help="default plain; for `run`, [daemon] log_format")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Command)
    for name, (summary, configure) in COMMANDS.items():
        sub.add_parser(name, help=summary, configure=configure)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``prober`` command line; the process's exit code."""
    # The prober uses no pydantic plugin, and looking for them reads the metadata of every
    # package installed (~11 ms of each start). An operator who sets the variable keeps theirs.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level or DEFAULT_LOG_LEVEL, args.log_format or "plain")
    try:
        code = int(args.func(args))
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
