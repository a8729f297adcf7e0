"""benchmarks/pyspy.py: py-spy's raw samples summed into self, area and inclusive tables."""

from __future__ import annotations

from pathlib import Path

from benchmarks import pyspy

ROOT = Path("/srv/bank-prober")
LIB = "/srv/bank-prober/.venv/lib/python3.11/site-packages"
STD = "/usr/lib/python3.11"

RAW = "\n".join([
    # 6 samples in aiohttp, called from the runner
    f"<module> ({ROOT}/prober/__main__.py:3);_run_step ({ROOT}/prober/journey/runner.py:120);"
    f"_request ({LIB}/aiohttp/client.py:700) 6",
    # 3 in the runner itself
    f"<module> ({ROOT}/prober/__main__.py:3);_run_step ({ROOT}/prober/journey/runner.py:131) 3",
    # 1 in asyncio's loop, no project frame but the entry point
    f"<module> ({ROOT}/prober/__main__.py:3);_run_once ({STD}/asyncio/base_events.py:1900) 1",
    # a frame py-spy could not name, and a line that is not a sample
    "<native> 2",
    "garbage",
])


def test_self_time_by_function_and_area() -> None:
    profile = pyspy.summarize(RAW, ROOT)
    assert profile.samples == 12
    assert profile.self_by_function.most_common(1) == [("_request (aiohttp)", 6)]
    assert profile.self_by_function["_run_step (prober/journey/runner.py)"] == 3
    assert dict(profile.self_by_area) == {"aiohttp": 6, "prober/journey/runner.py": 3, "asyncio": 1, "<native>": 2}


def test_inclusive_counts_a_module_once_per_sample_and_only_the_projects() -> None:
    recursive = f"f ({ROOT}/prober/a.py:1);g ({ROOT}/prober/a.py:2);h ({ROOT}/prober/b.py:3) 5\n"
    profile = pyspy.summarize(RAW + "\n" + recursive, ROOT)
    assert profile.inclusive_by_module["prober/a.py"] == 5  # two frames of a.py on one stack: once
    assert profile.inclusive_by_module["prober/journey/runner.py"] == 9
    assert profile.inclusive_by_module["prober/__main__.py"] == 10
    assert "aiohttp" not in profile.inclusive_by_module


def test_report_prints_shares_of_all_samples() -> None:
    lines = pyspy.report(pyspy.summarize(RAW, ROOT), top=2)
    assert lines[0] == "12 samples on CPU"
    assert "   50.0 %  _request (aiohttp)" in lines
    assert pyspy.report(pyspy.summarize("", ROOT)) == ["py-spy took no samples (was the process busy?)"]
