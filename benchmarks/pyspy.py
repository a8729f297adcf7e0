"""Where a running process's CPU goes: py-spy samples it from outside, this sums the samples.

py-spy (``requirements/bench.txt``, installed by ``scripts/bench``) reads the stacks of
the process without stopping it (``--nonblocking``) and without code in it, so the
process measured is the one users run. Idle samples are left out by py-spy: every
sample is CPU the process spent.

:func:`summarize` turns py-spy's raw output (one line per distinct stack,
``frame;frame;… count``, outermost first) into three tables:

* **self**: the functions the CPU was in (the innermost frame), grouped by function;
* **by area**: the same samples grouped by where that code lives — a module of the
  project (``prober/journey/runner.py``), a library (``aiohttp``), the standard
  library's ``asyncio``, ``ssl``, ``json``…;
* **on behalf of**: each sample charged to the innermost function of the project on its
  stack — which of the project's functions led to the CPU, its libraries' work included
  (``_send_timed`` for aiohttp's sending and reading).

A coroutine resumed by asyncio's (or uvloop's) C code is sampled from its own frame
outwards: py-spy cannot walk through the C frame to the loop that resumed it. So a
sample's outermost frame is not always the program's entry point, and "on behalf of"
charges a callback the loop ran with no project frame to ``(no project frame)`` with
its outermost function named.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_SITE_PACKAGES = re.compile(r"/(?:site|dist)-packages/(?P<rest>.+)$")
_STDLIB = re.compile(r"/lib/python3\.\d+/(?P<rest>.+)$")


@dataclass(frozen=True)
class Frame:
    """One frame of a sampled stack: the function and where its code lives."""

    function: str
    area: str
    """``prober/journey/runner.py`` for the project's code, the distribution's top
    package for a library (``aiohttp``), the module for the standard library (``asyncio``,
    ``json``), ``<native>`` when py-spy could not name a file."""

    @property
    def label(self) -> str:
        return f"{self.function} ({self.area})"


def area_of(path: str, root: Path | None = None) -> str:
    """Where the code at ``path`` lives (see :attr:`Frame.area`)."""
    match = _SITE_PACKAGES.search(path)  # first: the project's .venv is inside its root
    if match:
        return match["rest"].split("/", 1)[0].removesuffix(".py")
    if root is not None:
        try:
            return Path(path).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    match = _STDLIB.search(path)
    if match:
        return match["rest"].split("/", 1)[0].removesuffix(".py")
    return path or "<native>"


def parse_frame(text: str, root: Path | None = None) -> Frame:
    match = _FRAME.match(text)
    if match is None:
        return Frame(text, "<native>")
    return Frame(match["function"], area_of(match["file"], root))


def parse(raw: str, root: Path | None = None) -> list[tuple[list[Frame], int]]:
    """py-spy's raw lines as (stack, outermost first; samples)."""
    stacks: list[tuple[list[Frame], int]] = []
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append(([parse_frame(f, root) for f in stack.split(";")], int(count)))
    return stacks


@dataclass(frozen=True)
class Profile:
    samples: int
    self_by_function: Counter[str]
    self_by_area: Counter[str]
    on_behalf_of: Counter[str]
    """Samples per innermost function of the project on the stack."""


def summarize(raw: str, root: Path, project: str = "prober/") -> Profile:
    """Sum py-spy's raw samples (see the module's docstring); ``project`` names the
    project's own code (areas starting with it)."""
    by_function: Counter[str] = Counter()
    by_area: Counter[str] = Counter()
    behalf: Counter[str] = Counter()
    total = 0
    for stack, count in parse(raw, root):
        total += count
        leaf = stack[-1]
        by_function[leaf.label] += count
        by_area[leaf.area] += count
        own = next((f for f in reversed(stack) if f.area.startswith(project)), None)
        behalf[own.label if own else f"(no project frame) {_outermost(stack).label}"] += count
    return Profile(total, by_function, by_area, behalf)


def _outermost(stack: list[Frame]) -> Frame:
    """The first real frame: py-spy's ``--threads`` puts the thread's name first."""
    return next((f for f in stack if not f.function.startswith("thread ")), stack[0])


def table(title: str, counts: Counter[str], total: int, top: int) -> list[str]:
    lines = [f"{title}:"]
    for name, n in counts.most_common(top):
        lines.append(f"  {n / total * 100:5.1f} %  {name}")
    return lines


def report(profile: Profile, top: int = 15) -> list[str]:
    """The three tables as printable lines, shares of all samples."""
    if not profile.samples:
        return ["py-spy took no samples (was the process busy?)"]
    return [
        f"{profile.samples:,} samples on CPU",
        *table("self time by function (innermost frame)", profile.self_by_function, profile.samples, top),
        *table("self time by area", profile.self_by_area, profile.samples, top),
        *table("on behalf of (the innermost project function on the stack)", profile.on_behalf_of,
               profile.samples, top),
    ]


def py_spy() -> str:
    """The py-spy of this interpreter's environment, or exit with how to install it."""
    here = Path(sys.executable).parent / "py-spy"
    found = str(here) if here.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("--profile needs py-spy: run the benchmark with scripts/bench, which installs "
                         "requirements/bench.txt into .venv")
    return found


def record(pid: int, seconds: float, output: Path, rate: int = 250) -> str:
    """Sample ``pid`` for ``seconds`` without stopping it; the raw stacks as text."""
    command = [py_spy(), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
               "--rate", str(rate), "--format", "raw", "--full-filenames", "--nonblocking", "--threads",
               "--output", str(output)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"py-spy failed ({done.returncode}): {done.stderr.strip()[-1000:]}")
    return output.read_text()

