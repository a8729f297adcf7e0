"""A hanging bank delays nothing else: concurrency slots are per site.

End to end: the daemon service in-process against two simulated banks on loopback, one
of which hangs. Then the slot sizing and the site pool on their own.
"""

from __future__ import annotations

import asyncio
from itertools import pairwise
from pathlib import Path

import pytest

from prober.daemon.scheduler import OVERLAP_ERROR, waiting_error
from prober.daemon.slots import SitePool, share, site_limits
from prober.loading import load
from prober.results import Outcome
from prober.simbank import BankServer, Fault
from tests.daemon_helpers import Recorder, check, config_text, peak_while_running, service_for

pytestmark = pytest.mark.exclusive  # fair shares of the loop between checks

RUN_FOR = 4.0
HEALTHY_INTERVAL = 0.5
HANGING_CHECKS = 100  # well over the 64 slots every check shared before


async def test_hanging_bank_does_not_starve_a_healthy_one(bank: BankServer, tmp_path: Path) -> None:
    async with BankServer(seed=2) as stuck:
        stuck.faults.set("login", Fault(mode="hang"))
        healthy_site = config_text(
            bank.url,
            [check(kind, interval="500ms") for kind in ("login", "accounts", "payments")],
            daemon={"state_dir": str(tmp_path / "state")},
        )
        # 100 checks of a bank whose login never answers: each run holds its slot until
        # its journey timeout, 95% of the time; `[daemon] max_concurrency` is left unset.
        hanging_site = config_text(
            stuck.url,
            [check("login", name=f"stuck-{i}", interval="1s", timeout="950ms") for i in range(HANGING_CHECKS)],
            site="stuck",
        ).split("[[sites]]", 1)[1]
        recorder = Recorder()
        service = service_for(tmp_path, healthy_site + "\n[[sites]]" + hanging_site, recorder)
        await service.start()
        await asyncio.sleep(RUN_FOR)
        await service.stop(grace=2.0)

    healthy = [r for r in recorder.results if r.site == "simbank"]
    assert not [r for r in healthy if r.outcome is Outcome.SKIPPED], {r.error for r in healthy}
    for name in ("login", "accounts", "payments"):
        runs = sorted(recorder.of(name), key=lambda r: r.started_at_ns)
        assert all(r.outcome is Outcome.OK for r in runs), [(r.outcome, r.error) for r in runs]
        # A run on every due interval: the first within one interval of the start, then
        # no gap long enough to have lost one (1.8 × the interval leaves room for jitter
        # and a loaded machine; a lost run makes a gap of 2 ×).
        assert len(runs) >= int(RUN_FOR / HEALTHY_INTERVAL) - 2, (name, len(runs))
        gaps = [(b.started_at_ns - a.started_at_ns) / 1e9 for a, b in pairwise(runs)]
        assert max(gaps) < 1.8 * HEALTHY_INTERVAL, (name, gaps)
    # The hanging site did run (and time out) at the same time, with its own slots.
    stuck_runs = [r for r in recorder.results if r.site == "stuck" and r.outcome is not Outcome.SKIPPED]
    assert len(stuck_runs) >= HANGING_CHECKS * 2
    assert {r.outcome for r in stuck_runs} <= {Outcome.TIMEOUT}
    assert service.scheduler.pools["stuck"].limit == HANGING_CHECKS
    assert service.scheduler.pools["simbank"].limit == 3


async def test_a_full_site_pool_waits_and_says_so(bank: BankServer, tmp_path: Path) -> None:
    # One slot for three checks that each take ~350 ms every 500 ms: runs queue for the
    # site's slot, and a run due while the previous one still waits is skipped with a
    # reason naming the limit, not as if the bank were slow.
    bank.faults.set("payments", Fault(mode="slow", delay_ms=350))
    text = config_text(
        bank.url,
        [check("payments", name=f"p{i}", interval="500ms") for i in range(3)],
        daemon={"state_dir": str(tmp_path / "state")},
    ).replace('timeout = "2s"\n', 'timeout = "2s"\nmax_concurrency = 1\n', 1)
    recorder = Recorder()
    service = service_for(tmp_path, text, recorder)
    assert await peak_while_running(service, 3.0, lambda: service.scheduler.pools["simbank"].active) == 1
    errors = [r.error for r in recorder.results if r.outcome is Outcome.SKIPPED]
    assert waiting_error("simbank", 1) in errors
    assert set(errors) <= {waiting_error("simbank", 1), OVERLAP_ERROR}
    assert service.scheduler.waiting_skips == errors.count(waiting_error("simbank", 1))
    assert service.status_document()["scheduler"]["waiting_skips"] == service.scheduler.waiting_skips


def _limits(tmp_path: Path, text: str) -> dict[str, int]:
    path = tmp_path / "p.toml"
    path.write_text(text)
    loaded = load(path)
    return site_limits(loaded.config, loaded.plans)


def _site(name: str, checks: int, extra: str = "") -> str:
    return config_text("http://127.0.0.1:1", [check("login", name=f"c{i}") for i in range(checks)],
                       site=name).split("[[sites]]", 1)[1].replace('timeout = "2s"\n', f'timeout = "2s"\n{extra}', 1)


def test_site_limits_from_the_config(tmp_path: Path) -> None:
    # Default: one slot per enabled check, and the total is what the checks can need.
    text = (
        "[[sites]]"
        + _site("a", 5)
        + "\n[[sites]]"
        + _site("b", 2)
        + "\n[[sites]]"
        + _site("c", 3, "max_concurrency = 1\n")
    )
    assert _limits(tmp_path, text) == {"a": 5, "b": 2, "c": 1}
    # A site limit above its number of checks buys nothing.
    assert _limits(tmp_path, "[[sites]]" + _site("a", 2, "max_concurrency = 50\n")) == {"a": 2}
    # A global cap below the total is shared out: every site keeps a share of its own.
    capped = "[daemon]\nmax_concurrency = 4\n" + text
    assert _limits(tmp_path, capped) == {"a": 2, "b": 1, "c": 1}
    # Disabled checks need no slot; a cap at or above the need changes nothing.
    text = "[daemon]\nmax_concurrency = 9\n[[sites]]" + _site("a", 4).replace(
        'kind = "login"', 'kind = "login"\nenabled = false', 1
    )
    assert _limits(tmp_path, text) == {"a": 3}


@pytest.mark.parametrize(
    ("needs", "cap", "expected"),
    [
        ({"a": 10, "b": 10}, 6, {"a": 3, "b": 3}),
        ({"a": 100, "b": 1, "c": 1}, 10, {"a": 8, "b": 1, "c": 1}),
        ({"a": 3, "b": 5, "c": 9}, 5, {"a": 1, "b": 2, "c": 2}),
        ({"a": 3, "b": 5}, 8, {"a": 3, "b": 5}),
        ({f"s{i}": 7 for i in range(10)}, 10, {f"s{i}": 1 for i in range(10)}),
    ],
)
def test_share(needs: dict[str, int], cap: int, expected: dict[str, int]) -> None:
    got = share(needs, cap)
    assert got == expected
    assert sum(got.values()) <= cap and all(1 <= got[s] <= needs[s] for s in needs)


def test_share_needs_a_slot_per_site() -> None:
    with pytest.raises(ValueError):
        share({"a": 1, "b": 1}, 1)


async def test_site_pool_first_come_first_served_and_resizable() -> None:
    pool = SitePool(1)
    order: list[str] = []

    async def run(name: str, hold: asyncio.Event) -> None:
        await pool.acquire()
        order.append(name)
        try:
            await hold.wait()
        finally:
            pool.release()

    holds = {n: asyncio.Event() for n in "abc"}
    tasks = [asyncio.create_task(run(n, holds[n])) for n in "abc"]
    await asyncio.sleep(0.01)
    assert (order, pool.active, pool.waiting) == (["a"], 1, 2)
    tasks[1].cancel()  # a waiter cancelled before its turn gives up its place
    await asyncio.sleep(0.01)
    assert pool.waiting == 1
    pool.resize(2)  # a reload raising the limit admits the next at once
    await asyncio.sleep(0.01)
    assert order == ["a", "c"] and pool.active == 2
    pool.resize(1)  # lowering it admits no one until the site is under it
    late = asyncio.create_task(run("d", holds["a"]))
    holds["c"].set()
    await asyncio.sleep(0.01)
    assert order == ["a", "c"] and pool.active == 1
    holds["a"].set()
    await asyncio.gather(tasks[0], tasks[2], late)
    await asyncio.gather(tasks[1], return_exceptions=True)
    assert order == ["a", "c", "d"] and pool.active == 0
