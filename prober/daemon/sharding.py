"""Splitting one configuration's sites among prober processes: ``--shard K/N``, ``--workers N``.

The unit of the split is the **site**, not the check: the lockout, a site's concurrency
slots and the incidents per site × capability are decided inside one process, so all
the checks of a site live in the same one.

Each site goes to the share with the highest *rendezvous* score (highest random weight
hashing): ``blake2b(level, share number, site name)``, the same on every machine and in
every Python process (Python's own ``hash()`` of a string is salted per process). Adding
a site moves no other site; going from N to N + 1 shares moves only the sites the new
share wins, about 1 / (N + 1) of them, and from N + 1 back to N only that share's sites.

Two levels, hashed independently (each with its own ``level`` word), so that they can be
combined: ``--shard K/N`` takes this instance's share of the configuration (one instance
per machine, all given the same files), ``--workers W`` splits that share again among W
worker processes of the instance. A configuration with fewer sites than shares × workers
leaves some of them idle: they run, serve their health endpoint and report, and probe
nothing until a reload gives them a site.

Every share is its own prober, with its own identity (:func:`share_identity`): the
``instance`` tag gets a suffix (``-s<K>`` for a shard, ``-w<k>`` for a worker), the spool
and the state directory a subdirectory (``shard-<K>/``, ``worker-<k>/``). A worker's
health listener moves to ``port + k`` (:func:`worker_port`): ``health_listen`` itself is
the supervisor's, which answers for every worker (:mod:`prober.daemon.workers`). A
status page on a listener of its own moves to ``port + k - 1`` (the supervisor serves no
page: worker 1 keeps the configured address). Port 0 stays "any free port".
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prober.config.daemon import split_listen
from prober.config.influxdb import SpoolConfig
from prober.config.model import Config
from prober.loading import LoadedConfig

__all__ = ["Share", "owner", "parse_share", "select_sites", "share_identity", "spool_dir_of", "worker_port"]

_SHARE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
MAX_SHARES = 1024


@dataclass(frozen=True, slots=True)
class Share:
    """Share ``index`` (1-based) of ``count`` at one level (``"shard"`` or ``"worker"``)."""

    level: str
    index: int
    count: int

    @property
    def suffix(self) -> str:
        """What this share adds to the instance name: ``-s2``, ``-w1``."""
        return f"-{self.level[0]}{self.index}"

    @property
    def directory(self) -> str:
        """The subdirectory of the spool and state directories: ``shard-2``, ``worker-1``."""
        return f"{self.level}-{self.index}"


def parse_share(text: str, level: str = "shard") -> Share:
    """``"K/N"`` → :class:`Share`; ``ValueError`` with a message for the user otherwise."""
    match = _SHARE.match(text)
    if match is None:
        raise ValueError(f"expected K/N such as 2/3 (this instance's share K of N), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= count <= MAX_SHARES:
        raise ValueError(f"N must be between 1 and {MAX_SHARES}, got {text!r}")
    if not 1 <= index <= count:
        raise ValueError(f"K must be between 1 and N (shares are numbered from 1), got {text!r}")
    return Share(level, index, count)


def _score(level: str, index: int, site: str) -> int:
    digest = hashlib.blake2b(f"{level}\0{index}\0{site}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(site: str, count: int, level: str = "shard") -> int:
    """The share (1..``count``) that runs ``site``: the highest rendezvous score."""
    return max(range(1, count + 1), key=lambda index: _score(level, index, site))


def _owns(shares: Sequence[Share], site: str) -> bool:
    return all(owner(site, s.count, s.level) == s.index for s in shares)


def select_sites(loaded: LoadedConfig, shares: Sequence[Share]) -> LoadedConfig:
    """The part of ``loaded`` that ``shares`` (one per level) run: its sites and their plans."""
    if not shares:
        return loaded
    sites = [site for site in loaded.config.sites if _owns(shares, site.name)]
    names = {site.name for site in sites}
    config = loaded.config.model_copy(update={"sites": sites})
    return dataclasses.replace(loaded, config=config, plans=[p for p in loaded.plans if p.site in names])


def _subdir(directory: str, shares: Sequence[Share]) -> str:
    return str(Path(directory, *(s.directory for s in shares)))


def _offset_listen(value: str, offset: int) -> str:
    address = split_listen(value)
    if address is None or offset == 0 or address[1] == 0:
        return value
    host, port = address
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port + offset}"


def worker_port(port: int, index: int) -> int:
    """The health port of worker ``index`` (1-based) when the supervisor has ``port``."""
    return port + index if port else 0


def spool_dir_of(config: Config, shares: Sequence[Share] = ()) -> str:
    """The spool directory of ``shares`` of the (not yet split) ``config``: ``[influxdb]
    spool_dir``, or the embedded default's, plus the shares' subdirectories."""
    base = config.influxdb.spool_dir if config.influxdb is not None else SpoolConfig().spool_dir
    return _subdir(base, shares)


def share_identity(loaded: LoadedConfig, shares: Sequence[Share]) -> LoadedConfig:
    """``loaded`` as the prober of ``shares`` runs it: its instance name, spool and state
    directories, and (for a worker) its listeners' ports. Without ``[influxdb]`` there is
    no spool directory in the configuration: give :func:`spool_dir_of` to the writer."""
    if not shares:
        return loaded
    config = loaded.config
    offset = sum(s.index - 1 for s in shares if s.level == "worker")  # the status page's own listener
    health_offset = offset + (1 if any(s.level == "worker" for s in shares) else 0)  # as worker_port()
    prober = config.prober.model_copy(update={"instance": config.prober.instance + "".join(s.suffix for s in shares)})
    daemon = config.daemon.model_copy(update={
        "state_dir": _subdir(config.daemon.state_dir, shares),
        "health_listen": _offset_listen(config.daemon.health_listen, health_offset),
    })
    page = config.status_page.model_copy(update={"listen": _offset_listen(config.status_page.listen, offset)})
    spool = spool_dir_of(config, shares)
    update: dict[str, object] = {"prober": prober, "daemon": daemon, "status_page": page}
    if config.influxdb is not None:
        update["influxdb"] = config.influxdb.model_copy(update={"spool_dir": spool})
    return dataclasses.replace(loaded, config=config.model_copy(update=update))
