"""Tokens that survive: access tokens reused across runs, refresh tokens persisted.

A :class:`TokenCache` holds, per client (site, token URL, client id, grant, scope):

- the last access token and when it expires (in memory: an access token is cheap to get
  again after a restart, and a file of live bearer tokens is a risk for nothing);
- the current refresh token when the bank rotated it, in a file of the state directory
  written atomically (:func:`prober.atomic.write_atomic`: temporary file, fsync,
  rename, fsync of the directory) with mode 0600, so neither a restart nor a crash in
  the middle of a write loses the only valid refresh token. The file also records a hash
  of the configured refresh token: when the operator configures a new one (the old chain
  was revoked), it wins.
- a lock, so that two journeys of the same client never use one refresh token twice
  (the second waits and then finds the new access token or the rotated refresh token).

Nothing here logs a token, and errors name files, never contents.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prober.atomic import write_atomic
from prober.journey.errors import ReportableError
from prober.timefmt import utc_iso

if TYPE_CHECKING:
    import asyncio

TOKENS_DIR = "tokens"


@dataclass(slots=True, frozen=True)
class ClientKey:
    """Who a token belongs to. ``chain`` tells refresh-token chains of one client apart
    (e.g. two PSU consents): a fingerprint of the configured first refresh token."""

    site: str
    token_url: str
    client_id: str
    grant: str
    scope: str
    chain: str = ""

    def file_name(self) -> str:
        text = "\0".join((self.site, self.token_url, self.client_id, self.grant, self.scope, self.chain))
        return f"{self.site}-{hashlib.sha256(text.encode()).hexdigest()[:24]}.json"


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class TokenCache:
    """Access tokens in memory, rotated refresh tokens under ``state_dir/tokens``."""

    def __init__(self, state_dir: str | Path | None) -> None:
        self.directory = Path(state_dir) / TOKENS_DIR if state_dir is not None else None
        self._access: dict[ClientKey, tuple[str, float]] = {}
        self._refresh: dict[ClientKey, tuple[str, str]] = {}
        self._locks: dict[ClientKey, asyncio.Lock] = {}

    def lock(self, key: ClientKey) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            import asyncio  # here: a cache is made when a configuration is loaded, with no event loop

            lock = self._locks[key] = asyncio.Lock()
        return lock

    # -- access tokens -----------------------------------------------------------

    def access_token(self, key: ClientKey, margin_s: float) -> tuple[str, float] | None:
        """The cached token and its seconds left, if it stays valid more than ``margin_s``."""
        entry = self._access.get(key)
        if entry is None:
            return None
        left = entry[1] - time.monotonic()
        if left <= margin_s:
            del self._access[key]
            return None
        return entry[0], left

    def remember(self, key: ClientKey, token: str, expires_in: float) -> None:
        self._access[key] = (token, time.monotonic() + expires_in)

    def forget(self, key: ClientKey) -> None:
        self._access.pop(key, None)

    # -- refresh tokens ----------------------------------------------------------

    def refresh_token(self, key: ClientKey, configured: str) -> str:
        """The refresh token to use: the rotated one, unless ``configured`` changed since."""
        seed = fingerprint(configured)
        held = self._refresh.get(key)
        if held is None:
            held = self._load(key)
            if held is not None:
                self._refresh[key] = held
        if held is not None and held[1] == seed:
            return held[0]
        return configured

    def rotate(self, key: ClientKey, configured: str, new: str) -> None:
        """Keep ``new`` as the refresh token of ``key``: in memory first (so this process
        goes on even if the disk fails), then on disk. Raises
        :class:`ReportableError` naming the file when it cannot be written."""
        seed = fingerprint(configured)
        self._refresh[key] = (new, seed)
        if self.directory is not None:
            self._write(self.directory / key.file_name(), {"refresh_token": new, "seed": seed, "site": key.site,
                                                         "updated": utc_iso(time.time())})

    def _load(self, key: ClientKey) -> tuple[str, str] | None:
        if self.directory is None:
            return None
        path = self.directory / key.file_name()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return str(data["refresh_token"]), str(data["seed"])
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ReportableError(
                f"cannot read the stored refresh token {path}: {(exc.strerror or str(exc)).lower()}"
            ) from None
        except (ValueError, KeyError, TypeError):
            raise ReportableError(f"cannot read the stored refresh token {path}: not a token file") from None

    def _write(self, path: Path, data: dict[str, str]) -> None:
        try:
            write_atomic(path, json.dumps(data).encode(), mode=0o600, dir_mode=0o700)
        except OSError as exc:
            raise ReportableError(
                f"cannot persist the rotated refresh token in {path.parent}: {(exc.strerror or str(exc)).lower()}"
            ) from None
