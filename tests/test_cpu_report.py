"""The suite's CPU report (tests/fixtures/cpu_report.py) names the tests that spent CPU,
their own and their children's, most first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

SAMPLE = '''
import subprocess, sys, time
import pytest

@pytest.fixture(scope="session")
def shared_server():
    yield
    end = time.process_time() + 0.5  # what a server started once per run spends as it stops
    while time.process_time() < end:
        pass

def test_uses_the_shared_server(shared_server):
    pass

def test_idle():
    time.sleep(0.3)

def test_burns_cpu():
    end = time.process_time() + 0.4
    while time.process_time() < end:
        pass

def test_child_burns_cpu():
    subprocess.run([sys.executable, "-c",
                    "import time\\nend = time.process_time() + 0.6\\nwhile time.process_time() < end: pass"],
                   check=True)
'''


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "two-workers"])
def test_the_report_lists_the_tests_and_files_that_spent_the_most_cpu(tmp_path: Path, workers: list[str]) -> None:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.fixtures.cpu_report",
         "--cpu-report", "2", *workers, "test_sample.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout[-2000:]
    report = done.stdout.split("most CPU: ", 1)[1]
    tests, files = report.split(" by file ", 1)
    lines = [line for line in tests.splitlines() if "s cpu  " in line and "shared fixtures" not in line]
    listed = [line.split("cpu  ", 1)[1] for line in lines]
    assert listed == ["test_sample.py::test_child_burns_cpu", "test_sample.py::test_burns_cpu"]  # not the idle one
    seconds = [float(line.split("s cpu", 1)[0]) for line in lines]
    assert 0.6 <= seconds[0] < 1.0 and 0.4 <= seconds[1] < 0.6  # the last test, without the fixture's end
    assert "test_sample.py" in files and "%" in files
    # The session fixture's end is its own line, not the last test's (with workers, the last
    # test of the worker that started it).
    final = [line for line in tests.splitlines() if "shared fixtures" in line]
    assert len(final) == 1 and float(final[0].split("s cpu", 1)[0]) >= 0.5, tests
    assert "test_uses_the_shared_server" not in tests
