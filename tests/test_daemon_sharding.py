"""How sites are split among probers (``--shard K/N``, ``--workers N``): pure logic, no servers."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from prober.daemon.scheduler import phase_of
from prober.daemon.sharding import Share, owner, parse_share, select_sites, share_identity, spool_dir_of
from prober.loading import load

SITES = [f"bank-{i:03d}" for i in range(600)]


def test_parse_share_accepts_k_of_n_and_explains_what_is_wrong():
    assert parse_share("2/3") == Share("shard", 2, 3)
    assert parse_share(" 1 / 1 ", "worker") == Share("worker", 1, 1)
    for text, reason in [("0/3", "K must be between 1 and N"), ("4/3", "K must be between 1 and N"),
                         ("1/0", "N must be between 1"), ("3", "expected K/N"), ("a/b", "expected K/N"),
                         ("-1/3", "expected K/N"), ("1/5000", "N must be between 1")]:
        with pytest.raises(ValueError, match=reason):
            parse_share(text)


def test_every_site_has_exactly_one_owner_and_shares_are_balanced():
    counts = Counter(owner(site, 3) for site in SITES)
    assert set(counts) == {1, 2, 3}
    assert all(150 <= n <= 250 for n in counts.values()), counts  # 200 each, give or take


def test_adding_a_share_moves_only_the_sites_the_new_share_takes():
    before = {site: owner(site, 4) for site in SITES}
    after = {site: owner(site, 5) for site in SITES}
    moved = [site for site in SITES if before[site] != after[site]]
    assert all(after[site] == 5 for site in moved)
    assert 60 <= len(moved) <= 180, len(moved)  # about 1/5 of 600
    # Adding a site moves no other: ownership depends on the site's own name only.
    assert {site: owner(site, 4) for site in SITES[:100]} == {site: before[site] for site in SITES[:100]}


def test_owner_is_the_same_in_another_python_process():
    """Not Python's hash(), which is salted per process."""
    code = "from prober.daemon.sharding import owner; print([owner(f'bank-{i:03d}', 7) for i in range(50)])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345"}, cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == str([owner(f"bank-{i:03d}", 7) for i in range(50)])


def test_workers_split_a_shard_again_independently_of_the_shard_level():
    mine = [site for site in SITES if owner(site, 2, "shard") == 1]
    workers = Counter(owner(site, 2, "worker") for site in mine)
    assert set(workers) == {1, 2} and min(workers.values()) >= len(mine) // 3, workers


def _config(tmp_path: Path, sites: list[str], extra: str = "") -> Path:
    text = extra + "".join(
        f'[[sites]]\nname = "{name}"\nbase_url = "http://127.0.0.1:9"\n'
        f'[[sites.checks]]\nname = "c"\nkind = "login"\n[[sites.checks.steps]]\nname = "get"\npath = "/"\n'
        for name in sites
    )
    path = tmp_path / "prober.toml"
    path.write_text(text)
    return path


def test_select_sites_keeps_a_site_with_all_its_checks_in_one_share(tmp_path: Path):
    loaded = load(_config(tmp_path, SITES[:30]))
    parts = [select_sites(loaded, [Share("shard", k, 3)]) for k in (1, 2, 3)]
    names = [site.name for part in parts for site in part.config.sites]
    assert sorted(names) == sorted(SITES[:30])
    for part in parts:
        assert {p.site for p in part.plans} == {s.name for s in part.config.sites}
    assert select_sites(loaded, []) is loaded


def test_share_identity_names_the_instance_and_separates_directories_and_ports(tmp_path: Path):
    extra = ('[prober]\ninstance = "probe"\n[daemon]\nhealth_listen = "127.0.0.1:9480"\nstate_dir = "st"\n'
             '[status_page]\nenabled = true\nlisten = "[::1]:9500"\n'
             '[influxdb]\nurl = "http://127.0.0.1:8086"\napi = "v1"\ndatabase = "p"\nspool_dir = "sp"\n')
    loaded = load(_config(tmp_path, SITES[:3], extra))
    shares = [Share("shard", 2, 3), Share("worker", 3, 4)]
    config = share_identity(loaded, shares).config
    assert config.prober.instance == "probe-s2-w3"
    assert config.daemon.state_dir == str(Path("st", "shard-2", "worker-3"))
    assert config.influxdb is not None and config.influxdb.spool_dir == str(Path("sp", "shard-2", "worker-3"))
    assert spool_dir_of(loaded.config, shares) == config.influxdb.spool_dir
    assert config.daemon.health_listen == "127.0.0.1:9483"  # 9480 is the supervisor's: worker k on + k
    assert config.status_page.listen == "[::1]:9502"  # the supervisor serves no page: worker 1 keeps 9500
    assert loaded.config.prober.instance == "probe"  # the loaded configuration is not changed
    # A shard alone keeps its ports (one instance per machine); port 0 stays "any free port".
    alone = share_identity(loaded, [Share("shard", 2, 3)]).config
    assert alone.daemon.health_listen == "127.0.0.1:9480" and alone.prober.instance == "probe-s2"
    no_influx = load(_config(tmp_path, SITES[:3], '[daemon]\nhealth_listen = "127.0.0.1:0"\n'))
    worker = share_identity(no_influx, [Share("worker", 2, 2)]).config
    assert worker.daemon.health_listen == "127.0.0.1:0"
    assert spool_dir_of(no_influx.config, [Share("worker", 2, 2)]) == str(Path("var", "spool", "worker-2"))


def test_first_runs_are_phased_per_location():
    par = [phase_of("bank-a", f"c{i}", 60.0, 1.0, "par") for i in range(50)]
    fra = [phase_of("bank-a", f"c{i}", 60.0, 1.0, "fra") for i in range(50)]
    assert all(abs(a - b) > 0.0 for a, b in zip(par, fra, strict=True))
    assert sum(abs(a - b) > 1.0 for a, b in zip(par, fra, strict=True)) >= 45  # not merely a hair apart
    assert phase_of("bank-a", "c1", 60.0, 1.0, "par") == par[1]  # stable across starts


def test_run_with_a_bad_shard_or_workers_is_a_usage_error(tmp_path: Path):
    path = _config(tmp_path, SITES[:2])
    for args, message in [(["--shard", "4/3"], "K must be between 1 and N"), (["--shard", "x"], "expected K/N"),
                          (["--workers", "0"], "from 1 to 256")]:
        out = subprocess.run([sys.executable, "-m", "prober", "run", "-c", str(path), *args], capture_output=True,
                             text=True, timeout=60, cwd=Path(__file__).resolve().parent.parent)
        assert out.returncode == 2, out.stderr
        assert message in out.stderr and "Traceback" not in out.stderr, out.stderr
