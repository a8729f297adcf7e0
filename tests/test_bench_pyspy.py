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


def test_each_sample_is_charged_to_the_innermost_project_function() -> None:
    profile = pyspy.summarize(RAW, ROOT)
    assert profile.on_behalf_of["_run_step (prober/journey/runner.py)"] == 9  # aiohttp's 6 and its own 3
    assert profile.on_behalf_of["<module> (prober/__main__.py)"] == 1  # the loop's work under the entry point
    resumed = f"thread (7): MainThread;send ({LIB}/aiohttp/client_reqrep.py:1) 4"  # a coroutine from C
    assert pyspy.summarize(resumed, ROOT).on_behalf_of == {"(no project frame) send (aiohttp)": 4}


def test_report_prints_shares_of_all_samples() -> None:
    lines = pyspy.report(pyspy.summarize(RAW, ROOT), top=2)
    assert lines[0] == "12 samples on CPU"
    assert "   50.0 %  _request (aiohttp)" in lines
    assert pyspy.report(pyspy.summarize("", ROOT)) == ["py-spy took no samples (was the process busy?)"]
