"""How fast the ``prober`` command line starts: wall time per command, and who imports what.

    python benchmarks/cli_startup.py [--runs 20] [--tree DIR ...] [--top 12] [--instructions]

For each command (``prober --help``, ``prober validate -c config/simbank.toml``, and the
help of the commands that list more), runs ``python -m prober …`` ``--runs`` times in a
fresh interpreter and prints the median and the 90th percentile of the wall time, and
the median CPU time of the process (steadier than wall time on a loaded machine), next
to the goal where there is one (``--help`` ≤ 150 ms, ``validate`` of the shipped example
≤ 350 ms). Then, once per command, ``python -X importtime`` shows the modules whose
import took longest (cumulative, their own imports included) and the packages below
``prober`` that the command pulls in, which is where a slow start comes from.

``--tree DIR`` measures the ``prober`` package of another checkout with the same
interpreter (``PYTHONPATH=DIR``), e.g. the main branch unpacked by ``git archive main |
tar -x -C /tmp/base``; give it several times (``--tree /tmp/base --tree .``) to compare
trees, their runs interleaved so that a change in the machine's load hits all alike.
Wall times move with the machine's load: the load average is printed with them.
``--instructions`` adds what does not: the instructions each tree's ``validate`` (and the
bare interpreter) executes, counted once under Valgrind's callgrind (Debian's
``valgrind``; about a minute per run), the figure to compare trees by on a busy machine.

Each tree's ``prober`` package is compiled to bytecode first (``compileall``), as an
installed package is: with ``PYTHONDONTWRITEBYTECODE=1`` in the environment, the runs
would otherwise compile every module of the project from source each time (about 100 ms
of ``validate``), which no installed prober does.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

BARE = "python -c pass (the interpreter alone)"
"""Measured alongside as a reference: what the machine's load does to any start."""

COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("prober --help", ["--help"], 150.0),
    ("prober validate -c config/simbank.toml", ["validate", "-c", "config/simbank.toml"], 350.0),
    ("prober check --help", ["check", "--help"], None),
    ("prober demo --help", ["demo", "--help"], None),
]
"""Label, arguments, goal in milliseconds (None: shown, no goal)."""


def run_once(tree: Path, args: list[str] | None, importtime: bool = False) -> tuple[float, float, str]:
    """Wall and CPU seconds of one ``python -m prober ARGS`` in ``tree`` (``None``: of
    ``python -c pass``), and its stderr."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    flags = ["-X", "importtime"] if importtime else []
    command = ["-c", "pass"] if args is None else ["-m", "prober", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *flags, *command], cwd=tree, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"python {' '.join(command)} in {tree} exited {done.returncode}:\n{done.stderr}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, cpu, done.stderr


def instructions(tree: Path, args: list[str] | None) -> int:
    """Instructions executed by ``python -m prober ARGS`` in ``tree`` (``None``: ``python
    -c pass``), counted by callgrind."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = ["-c", "pass"] if args is None else ["-m", "prober", *args]
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                           *command], cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, check=False)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind python {' '.join(command)} in {tree} exited {done.returncode}:\n{done.stderr}")
    return int(found.group(1).replace(",", ""))


def warm_up(trees: list[Path]) -> None:
    """Each tree's bytecode compiled, as an installed package has it, and its files in the
    page cache (one run of each command)."""
    print(f"# bytecode of each tree's prober package compiled first (compileall); PYTHONDONTWRITEBYTECODE is "
          f"{'set' if os.environ.get('PYTHONDONTWRITEBYTECODE') else 'not set'}")
    for tree in trees:
        if not compileall.compile_dir(tree / "prober", quiet=1):
            raise SystemExit(f"{tree}/prober: does not compile")
        for _, command, _ in COMMANDS:
            run_once(tree, command)


def print_instructions(trees: list[Path]) -> None:
    """The instructions of the bare interpreter and of each tree's ``validate``."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    label, command, _ = COMMANDS[1]
    print()
    print("instructions executed (valgrind --tool=callgrind, one run each; independent of the load), millions:")
    print(f"  {BARE:42} {instructions(trees[0], None) / 1e6:8.1f}")
    for tree in trees:
        where = f"  [{tree}]" if len(trees) > 1 else ""
        print(f"  {label:42} {instructions(tree, command) / 1e6:8.1f}{where}")


def importers(stderr: str) -> list[tuple[int, int, int, str]]:
    """``(cumulative µs, self µs, depth, module)`` of each line of ``-X importtime``."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|", 2)
        depth = (len(name) - len(name.lstrip(" "))) // 2
        rows.append((int(cumulative), int(own), depth, name.strip()))
    return rows


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(len(ordered) * q / 100) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each command per tree (default 20)")
    parser.add_argument("--tree", action="append", type=Path, default=None,
                        help="checkout whose prober package to run (repeatable; default this one)")
    parser.add_argument("--top", type=int, default=12, help="slowest imports shown per command (default 12)")
    parser.add_argument("--instructions", action="store_true",
                        help="also count the instructions of validate under valgrind (about a minute per tree)")
    args = parser.parse_args()
    trees = [tree.resolve() for tree in (args.tree or [REPO])]

    print(f"# python benchmarks/cli_startup.py --runs {args.runs} "
          + " ".join(f"--tree {tree}" for tree in args.tree or []))
    print(f"# {sys.executable}, Python {sys.version.split()[0]}; load average {os.getloadavg()[0]:.2f} at start")
    warm_up(trees)
    times: dict[tuple[Path, str], list[float]] = {}
    cpus: dict[tuple[Path, str], list[float]] = {}
    for _ in range(args.runs):  # rounds interleave the trees and the commands
        wall, cpu, _ = run_once(trees[0], None)
        times.setdefault((trees[0], BARE), []).append(wall * 1000.0)
        cpus.setdefault((trees[0], BARE), []).append(cpu * 1000.0)
        for tree in trees:
            for label, command, _ in COMMANDS:
                wall, cpu, _ = run_once(tree, command)
                times.setdefault((tree, label), []).append(wall * 1000.0)
                cpus.setdefault((tree, label), []).append(cpu * 1000.0)
    print(f"# load average {os.getloadavg()[0]:.2f} at the end")
    print()
    print("per command, ms: wall time median / p90 of the runs, then the process's CPU time (user + system) median")
    bare, bare_cpu = times[(trees[0], BARE)], cpus[(trees[0], BARE)]
    print(f"  {BARE:42} {statistics.median(bare):7.1f} / {percentile(bare, 90):7.1f}  CPU "
          f"{statistics.median(bare_cpu):6.1f}  (reference: what the load does to any start)")
    for label, _, goal in COMMANDS:
        for tree in trees:
            runs = times[(tree, label)]
            median = statistics.median(runs)
            verdict = "" if goal is None else f"  goal <= {goal:.0f} ms: {'met' if median <= goal else 'NOT met'}"
            where = f"  [{tree}]" if len(trees) > 1 else ""
            print(
                f"  {label:42} {median:7.1f} / {percentile(runs, 90):7.1f}  "
                f"CPU {statistics.median(cpus[(tree, label)]):6.1f}"
                f"{verdict}{where}"
            )

    if args.instructions:
        print_instructions(trees)

    for tree in trees:
        for label, command, _ in COMMANDS[:2]:
            rows = importers(run_once(tree, command, importtime=True)[2])
            total = sum(cumulative for cumulative, _, depth, _ in rows if depth == 0)
            print()
            print(f"{label}{f'  [{tree}]' if len(trees) > 1 else ''}: imports {total / 1000:.1f} ms in all "
                  f"(python -X importtime, one run); the slowest, cumulative / self ms:")
            for cumulative, own, depth, name in sorted(rows, reverse=True)[: args.top]:
                print(f"  {cumulative / 1000:7.1f} / {own / 1000:6.1f}  {'  ' * depth}{name}")
            third_party = sorted({name.split(".")[0] for _, _, _, name in rows
                                  if not name.startswith(("prober", "_")) and "." not in name
                                  and name not in sys.stdlib_module_names})
            print(f"  third-party packages imported: {', '.join(third_party) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
