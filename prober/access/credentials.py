"""Checking the credential a request to an internal route presents.

* **Bearer tokens** (``Authorization: Bearer <token>``): the SHA-256 of the presented
  token is compared with that of every configured token with :func:`hmac.compare_digest`
  (all of them, whichever matches), so neither the time taken nor a length tells
  anything about them.
* **Basic auth** (``Authorization: Basic …``): the password is checked against the
  user's bcrypt hashes. bcrypt is slow on purpose (about 0.2 s of CPU at cost 10 and
  0.6 s at cost 12 on a 2-core test machine), so it never runs on the event loop: one
  thread of its own runs one verification at a time (a flood of guesses takes at most
  one core, and bcrypt lets the GIL go meanwhile), and at most :data:`MAX_PENDING` wait
  for it (beyond that the request is answered *busy*, 503). A success is remembered for
  :data:`CACHE_TTL` seconds, keyed by an HMAC of the presented credential under a key
  drawn at start (the password itself is never kept), in a table of at most
  :data:`CACHE_SIZE` entries: a scraper asking every 5 s costs one bcrypt a minute, not
  one per request. Requests presenting the same credential at the same moment (a
  browser fetching the page, its stylesheet and its icon) share one verification. An
  unknown user name is checked against a configured hash all the same, so that the time
  taken does not tell which users exist.

:meth:`Authenticator.configure` replaces the credentials (a reload) and forgets every
remembered success: a credential taken out stops working at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import bcrypt

from prober.config.access import AccessConfig

CACHE_TTL = 60.0
"""Seconds a successful basic-auth verification is remembered."""
CACHE_SIZE = 1024
"""Remembered verifications at most (the oldest is forgotten first)."""
MAX_PENDING = 8
"""Basic-auth verifications waiting for the bcrypt thread at most; more are refused (busy)."""

Verdict = Literal["ok", "missing", "invalid", "busy"]


@dataclass(frozen=True, slots=True)
class AuthResult:
    """What :meth:`Authenticator.check` decided: ``ok`` (``who`` is the token's or the
    user's name), ``missing`` (no credential), ``invalid`` or ``busy`` (try again)."""

    verdict: Verdict
    scheme: str = ""
    """``bearer`` or ``basic`` when the request used one of them."""
    who: str = ""


MISSING = AuthResult("missing")
BUSY = AuthResult("busy", "basic")


@dataclass(slots=True)
class _Credentials:
    """One generation of credentials, with what was remembered about them."""

    tokens: tuple[tuple[str, bytes], ...]
    """(name, SHA-256 of the token)."""
    users: dict[str, tuple[bytes, ...]]
    """User name → its bcrypt hashes (several while a password is being replaced)."""
    remembered: OrderedDict[bytes, tuple[float, str]] = field(default_factory=OrderedDict)
    """HMAC of a credential → (until when it is known good, the user's name)."""
    inflight: dict[bytes, asyncio.Future[bool]] = field(default_factory=dict)


def _verify(password: bytes, hashes: Sequence[bytes], known: bool) -> bool:
    """bcrypt-check ``password`` against every hash (runs in the bcrypt thread)."""
    matched = False
    for hashed in hashes:
        try:
            matched = bcrypt.checkpw(password, hashed) or matched
        except ValueError:  # a password over bcrypt's 72 bytes (refused by bcrypt 5)
            pass
    return matched and known


class Authenticator:
    """Checks ``Authorization`` headers against the credentials of an :class:`AccessConfig`."""

    def __init__(self, config: AccessConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self._executor: ThreadPoolExecutor | None = None
        self._pending = 0
        self.verifications = 0
        """bcrypt verifications run since the start (the cache's misses)."""
        self.configure(config)

    def configure(self, config: AccessConfig) -> None:
        """Use the credentials of ``config`` from now on; forget every remembered success."""
        users: dict[str, list[bytes]] = {}
        for user in config.users:
            users.setdefault(user.name, []).append(user.password_hash.get_secret_value().encode())
        self._credentials = _Credentials(
            tokens=tuple((t.name, hashlib.sha256(t.token.get_secret_value().encode()).digest())
                         for t in config.tokens),
            users={name: tuple(hashes) for name, hashes in users.items()},
        )

    @property
    def schemes(self) -> tuple[str, ...]:
        """The schemes a credential may use: ``basic`` and/or ``bearer``."""
        credentials = self._credentials
        return (("basic",) if credentials.users else ()) + (("bearer",) if credentials.tokens else ())

    @property
    def remembered(self) -> int:
        """Successful verifications remembered now."""
        return len(self._credentials.remembered)

    async def check(self, header: str | None) -> AuthResult:
        """Decide on the value of a request's ``Authorization`` header (None: absent)."""
        if not header or not header.strip():
            return MISSING
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return self._bearer(value.strip())
        if scheme == "basic":
            return await self._basic(value.strip())
        return AuthResult("invalid")

    def _bearer(self, token: str) -> AuthResult:
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        who = ""
        for name, expected in self._credentials.tokens:
            if hmac.compare_digest(expected, digest) and not who:
                who = name
        return AuthResult("ok" if who else "invalid", "bearer", who)

    async def _basic(self, value: str) -> AuthResult:
        credentials = self._credentials
        if not credentials.users:
            return AuthResult("invalid", "basic")
        try:
            raw = base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            return AuthResult("invalid", "basic")
        name_bytes, colon, password = raw.partition(b":")
        try:
            name = name_bytes.decode("utf-8")
        except UnicodeDecodeError:
            return AuthResult("invalid", "basic")
        if not colon:
            return AuthResult("invalid", "basic")
        key = hmac.new(self._key, raw, hashlib.sha256).digest()
        remembered = credentials.remembered.get(key)
        if remembered is not None and remembered[0] > self.clock():
            credentials.remembered.move_to_end(key)
            return AuthResult("ok", "basic", remembered[1])
        future = credentials.inflight.get(key)
        if future is None:
            if self._pending >= MAX_PENDING:
                return BUSY
            future = self._start_verification(credentials, key, name, password)
        if not await asyncio.shield(future):
            return AuthResult("invalid", "basic")
        credentials.remembered[key] = (self.clock() + CACHE_TTL, name)
        credentials.remembered.move_to_end(key)
        while len(credentials.remembered) > CACHE_SIZE:
            credentials.remembered.popitem(last=False)
        return AuthResult("ok", "basic", name)

    def _start_verification(self, credentials: _Credentials, key: bytes, name: str,
                            password: bytes) -> asyncio.Future[bool]:
        hashes = credentials.users.get(name)
        known = hashes is not None
        if hashes is None:  # the same work as for a known user: the time does not tell
            hashes = next(iter(credentials.users.values()))[:1]
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prober-bcrypt")
        self._pending += 1
        self.verifications += 1
        future = asyncio.get_running_loop().run_in_executor(self._executor, _verify, password, hashes, known)
        credentials.inflight[key] = future

        def done(_: asyncio.Future[bool]) -> None:
            self._pending -= 1
            credentials.inflight.pop(key, None)

        future.add_done_callback(done)
        return future

    def close(self) -> None:
        """Let the bcrypt thread go (verifications under way finish first)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
