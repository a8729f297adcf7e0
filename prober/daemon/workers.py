"""The health of ``prober run --workers N`` as a whole: what the supervisor answers.

Docker's ``HEALTHCHECK``, a load balancer or a Kubernetes probe ask one address,
``[daemon] health_listen``. With workers, the supervisor listens there
(:class:`SupervisorHealthServer`) and answers for the whole process tree; worker k
listens on that port + k.

Each worker has a :class:`WorkerRecord`, kept up to date by the supervisor from its
own polling (one ``GET /healthz`` per worker every few seconds, reading only the
status line, :func:`ask_health`) and from the processes' starts and exits. Its
``state`` is one of:

``starting``
    (Re)started, and has not answered ``/healthz`` with 200 since: no answer yet, or 503
    while it loads its configuration.
``ok``
    Its latest answer was 200 (it schedules its checks).
``unhealthy``
    It answered 200 before, and its latest answer was another status (503: stopping).
``not_answering``
    It answered 200 before, and its latest question got no answer within the poll
    interval (a stuck event loop, a stopped process): after ``worker_stall_timeout`` of
    silence the supervisor kills and restarts it.
``restarting``
    The process exited (or was killed) and waits out its restart back-off.
``running``
    Its health port is not known (``health_listen`` with port 0): the process runs;
    nothing more is known.
``stopped``
    The supervisor is stopping and the worker has exited.

A worker is *healthy* in states ``ok`` and ``running``. The tree is healthy, and the
supervisor's ``/healthz`` answers 200 ``{"status": "ok"}``, when it is not stopping and
every worker is healthy; otherwise 503 with ``status`` ``starting`` (every worker that
is not healthy is starting), ``stopping`` or ``unhealthy``: nothing more, since it
answers anyone; each worker's state is on ``/status``, an internal route.
The answer is taken from the records, never by asking the workers at that moment, so
it costs the supervisor nothing however often it is asked, and it is at most one poll
interval old.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from prober.access import AccessGate, serve_publicly
from prober.listener import Listener
from prober.timefmt import utc_iso

WorkerState = Literal["starting", "ok", "unhealthy", "not_answering", "restarting", "running", "stopped"]
HEALTHY: frozenset[str] = frozenset({"ok", "running"})


@dataclass(slots=True)
class WorkerRecord:
    """What the supervisor knows of worker ``index`` of ``count`` (see the module docstring)."""

    index: int
    count: int
    instance: str
    """Its ``instance`` tag (``<instance>-w<k>``)."""
    address: tuple[str, int] | None
    """``(host, port)`` of its health endpoint, None when not known (port 0)."""
    scheme: str = "http"
    """How its health endpoint is asked: ``https`` with ``[access.tls]``."""
    pid: int | None = None
    state: WorkerState = "starting"
    restarts: int = 0
    stalls: int = 0
    """Times it was killed for answering nothing for ``worker_stall_timeout``."""
    started_at: float | None = None
    last_exit: int | None = None
    """Exit code of its previous process (negative: killed by that signal)."""
    asked_at: float | None = None
    """When it was last asked ``/healthz``."""
    last_status: int | None = None
    """The HTTP status of the answer to that question; None: no answer."""
    answered_at: float | None = None
    """When it last answered anything."""
    answered_ok: bool = False
    """Whether it has answered 200 since its latest start."""

    @property
    def healthy(self) -> bool:
        return self.state in HEALTHY

    def started(self, pid: int, now: float) -> None:
        self.pid, self.started_at, self.answered_ok = pid, now, False
        self.state = "starting" if self.address is not None else "running"

    def answered(self, status: int | None, now: float) -> None:
        """Record the answer to one health question (``None``: no answer)."""
        self.asked_at, self.last_status = now, status
        if status is not None:
            self.answered_at = now
        if status == 200:
            self.answered_ok, self.state = True, "ok"
        elif not self.answered_ok:
            self.state = "starting"
        else:
            self.state = "not_answering" if status is None else "unhealthy"

    def exited(self, code: int, *, restarting: bool) -> None:
        self.last_exit = code
        if restarting:
            self.restarts += 1
        self.state = "restarting" if restarting else "stopped"

    def to_json(self) -> dict[str, Any]:
        host, port = self.address if self.address is not None else (None, None)
        return {
            "worker": self.index,
            "shard": f"{self.index}/{self.count}",
            "instance": self.instance,
            "pid": self.pid,
            "port": port,
            "health": None if host is None else f"{self.scheme}://{_bracketed(host)}:{port}/healthz",
            "state": self.state,
            "healthy": self.healthy,
            "restarts": self.restarts,
            "stalls": self.stalls,
            "started": _iso(self.started_at),
            "last_exit": self.last_exit,
            "last_health": None if self.asked_at is None else {"at": _iso(self.asked_at), "status": self.last_status},
            "last_answer": _iso(self.answered_at),
        }


def _iso(at: float | None) -> str | None:
    return None if at is None else utc_iso(at, millis=True)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def tree_status(records: Sequence[WorkerRecord], stopping: bool) -> str:
    """``ok``, ``starting``, ``stopping`` or ``unhealthy`` for the whole process tree."""
    if stopping:
        return "stopping"
    if all(r.healthy for r in records):
        return "ok"
    if all(r.healthy or r.state == "starting" for r in records):
        return "starting"
    return "unhealthy"


ANSWER_MAX = 65536
"""Bytes of a health answer read at most (a worker's is a few dozen)."""
NO_LINGER = struct.pack("ii", 1, 0)


def health_client_context() -> ssl.SSLContext:
    """TLS to a worker's own health port: the supervisor's child on this machine, asked
    for a status line and sent nothing secret, so its certificate (issued for the names
    clients use, not for the address asked here) is not checked."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def ask_health(host: str, port: int, timeout: float, tls: ssl.SSLContext | None = None) -> int | None:
    """The HTTP status with which ``host:port`` answers ``GET /healthz`` within
    ``timeout`` (over TLS with ``tls``), or None when it answers nothing (refused,
    silent, not HTTP).

    The answer is read to its end (HTTP/1.0: the server closes), and the connection is
    closed without lingering (``SO_LINGER`` 0: a reset when the worker did not close it
    first, a silent one), so that no client port stays in TIME_WAIT: such a port is
    unbindable for a minute, and it may be a worker's when ``health_listen``'s port is in
    the ephemeral range (a restarted worker could then not listen again).
    """
    writer = None
    line = b""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, ssl=tls)
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, NO_LINGER)
            writer.write(f"GET /healthz HTTP/1.0\r\nHost: {_bracketed(host)}:{port}\r\n\r\n".encode())
            await writer.drain()
            line = await reader.readline()
            read = len(line)
            while read < ANSWER_MAX and (chunk := await reader.read(ANSWER_MAX - read)):
                read += len(chunk)
    # ValueError: a line over the stream's limit; ssl.SSLError is an OSError
    except (OSError, TimeoutError, ValueError):
        if not line.endswith(b"\n"):  # no status line: no answer (a status line and a stuck body still is one)
            return None
    finally:
        if writer is not None:
            writer.close()
    parts = line.split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return None
    return int(parts[1])


class SupervisorHealthServer(Listener):
    """``GET /healthz`` and ``GET /status`` of the supervisor, on ``health_listen``.

    ``records`` and ``stopping`` are read at each request; ``settings`` adds figures of
    the supervisor to ``/status`` (poll interval, stall timeout, the instance's shard).
    """

    what = "supervisor health server (/healthz and /status for every worker)"

    def __init__(self, host: str, port: int, records: Sequence[WorkerRecord], stopping: Callable[[], bool],
                 settings: dict[str, Any] | None = None, gate: AccessGate | None = None) -> None:
        super().__init__(host, port, gate)
        self.records = records
        self.stopping = stopping
        self.settings = dict(settings or {})

    def routes(self, app: web.Application) -> None:
        serve_publicly(app, app.router.add_get("/healthz", self.healthz))
        app.router.add_get("/status", self.status)

    async def healthz(self, request: web.Request) -> web.Response:
        status = tree_status(self.records, self.stopping())
        return web.json_response({"status": status}, status=200 if status == "ok" else 503)

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response({
            "status": tree_status(self.records, self.stopping()),
            "role": "supervisor",
            "pid": os.getpid(),
            **self.settings,
            "workers": [r.to_json() for r in self.records],
        })
