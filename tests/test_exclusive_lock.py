"""The lock that lets ``exclusive`` tests run alone under ``pytest -n N`` (tests/fixtures/exclusive.py)."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.exclusive import held_for


def _can_take(path: Path, mode: int) -> bool:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


@pytest.fixture
def locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BANK_PROBER_TEST_LOCKS", str(tmp_path))
    return tmp_path


def test_ordinary_tests_share_the_lock_and_keep_an_exclusive_one_out(locks: Path) -> None:
    with held_for(exclusive=False), held_for(exclusive=False):  # two workers' ordinary tests at once
        assert _can_take(locks / "main", fcntl.LOCK_SH)
        assert not _can_take(locks / "main", fcntl.LOCK_EX)
        assert _can_take(locks / "turnstile", fcntl.LOCK_EX)  # not held while a test runs
    assert _can_take(locks / "main", fcntl.LOCK_EX)


def test_an_exclusive_test_keeps_every_other_test_out(locks: Path) -> None:
    with held_for(exclusive=True):
        assert not _can_take(locks / "main", fcntl.LOCK_SH)
        assert not _can_take(locks / "turnstile", fcntl.LOCK_EX)
    assert _can_take(locks / "main", fcntl.LOCK_SH) and _can_take(locks / "turnstile", fcntl.LOCK_EX)


def test_a_waiting_exclusive_test_stops_new_tests_from_starting(locks: Path) -> None:
    ran = threading.Event()

    def exclusive() -> None:
        with held_for(exclusive=True):
            ran.set()

    with held_for(exclusive=False):
        waiter = threading.Thread(target=exclusive)
        waiter.start()
        # The waiter holds the turnstile while it waits for the running test to end:
        # a new ordinary test cannot pass it, so the exclusive one is next.
        for _ in range(500):
            if not _can_take(locks / "turnstile", fcntl.LOCK_EX):
                break
            time.sleep(0.01)  # until the waiter has reached the turnstile
        assert not _can_take(locks / "turnstile", fcntl.LOCK_EX)
        assert not ran.is_set()
    waiter.join(timeout=10)
    assert ran.is_set() and not waiter.is_alive()
