"""The supervisor's view of its workers: the question to a worker's health endpoint (any
HTTP answer is alive), the state each answer gives a worker, and the supervisor's own
``/healthz`` and ``/status`` over a real socket."""

from __future__ import annotations

import asyncio
import socket

import pytest

from prober.daemon.workers import SupervisorHealthServer, WorkerRecord, ask_health, tree_status
from tests.daemon_helpers import get_json


async def _server(reply: bytes | None) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        if reply is None:
            await asyncio.sleep(10)  # accepts, never answers: a stuck loop's kernel backlog
        else:
            writer.write(reply)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_any_status_is_an_answer_and_silence_is_not() -> None:
    for reply, expected in ((b"HTTP/1.1 200 OK\r\n\r\nok", 200), (b"HTTP/1.1 503 Service Unavailable\r\n\r\n", 503),
                            (None, None), (b"garbage\r\n", None), (b"HTTP/1.1 OK\r\n", None)):
        server, port = await _server(reply)
        async with server:
            assert await ask_health("127.0.0.1", port, timeout=0.5) == expected, reply
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert await ask_health("127.0.0.1", closed, timeout=0.5) is None


def _record(address: tuple[str, int] | None = ("127.0.0.1", 9481)) -> WorkerRecord:
    record = WorkerRecord(1, 2, "probe-w1", address)
    record.started(4242, 1000.0)
    return record


@pytest.mark.parametrize(("answers", "state"), [
    ([], "starting"),
    ([None], "starting"),  # not listening yet
    ([503], "starting"),  # loading its configuration
    ([None, 503, 200], "ok"),
    ([200, 503], "unhealthy"),  # stopping
    ([200, None], "not_answering"),
    ([200, None, 200], "ok"),
])
def test_the_state_each_answer_gives_a_worker(answers, state):
    record = _record()
    for n, status in enumerate(answers):
        record.answered(status, 1001.0 + n)
    assert record.state == state
    assert record.healthy is (state == "ok")


def test_exits_restarts_and_unknown_ports():
    record = _record()
    record.answered(200, 1001.0)
    record.exited(-9, restarting=True)
    assert (record.state, record.restarts, record.last_exit, record.healthy) == ("restarting", 1, -9, False)
    record.started(4343, 1010.0)
    assert record.state == "starting" and not record.answered_ok  # a 200 before the restart does not count
    record.exited(0, restarting=False)
    assert record.state == "stopped"
    unknown = _record(None)  # health_listen with port 0: only the process is known
    assert unknown.state == "running" and unknown.healthy


@pytest.mark.parametrize(("states", "stopping", "expected"), [
    (["ok", "ok"], False, "ok"),
    (["ok", "running"], False, "ok"),
    (["ok", "starting"], False, "starting"),
    (["ok", "not_answering"], False, "unhealthy"),
    (["restarting", "starting"], False, "unhealthy"),
    (["unhealthy", "ok"], False, "unhealthy"),
    (["ok", "ok"], True, "stopping"),
])
def test_the_tree_is_healthy_when_every_worker_is(states, stopping, expected):
    records = []
    for k, state in enumerate(states, 1):
        record = WorkerRecord(k, len(states), f"probe-w{k}", ("127.0.0.1", 9480 + k))
        record.state = state
        records.append(record)
    assert tree_status(records, stopping) == expected


async def test_the_supervisor_answers_from_its_records():
    records = [_record(), WorkerRecord(2, 2, "probe-w2", ("127.0.0.1", 9482))]
    records[0].answered(200, 1001.5)
    records[1].started(4343, 1000.0)
    stopping = False
    server = SupervisorHealthServer("127.0.0.1", 0, records, lambda: stopping, {"instance_shard": None})
    await server.start()
    try:
        # /healthz answers anyone: the tree's status, nothing more; the workers are on /status.
        assert await get_json(server.url + "/healthz") == (503, {"status": "starting"})
        records[1].answered(200, 1002.0)
        assert await get_json(server.url + "/healthz") == (200, {"status": "ok"})
        records[1].answered(None, 1003.0)
        assert await get_json(server.url + "/healthz") == (503, {"status": "unhealthy"})
        code, doc = await get_json(server.url + "/status")
        assert code == 200 and doc["status"] == "unhealthy" and doc["role"] == "supervisor"
        assert [w["state"] for w in doc["workers"]] == ["ok", "not_answering"]
        first, second = doc["workers"]
        assert first == {
            "worker": 1, "shard": "1/2", "instance": "probe-w1", "pid": 4242, "port": 9481,
            "health": "http://127.0.0.1:9481/healthz", "state": "ok", "healthy": True, "restarts": 0, "stalls": 0,
            "started": "1970-01-01T00:16:40.000Z", "last_exit": None,
            "last_health": {"at": "1970-01-01T00:16:41.500Z", "status": 200}, "last_answer": "1970-01-01T00:16:41.500Z",
        }
        assert second["last_health"] == {"at": "1970-01-01T00:16:43.000Z", "status": None}
        assert second["last_answer"] == "1970-01-01T00:16:42.000Z"
        stopping = True
        assert (await get_json(server.url + "/healthz"))[1]["status"] == "stopping"
    finally:
        await server.stop()


def _client_sockets(server_port: int) -> list[str]:
    """States (``/proc/net/tcp`` codes) of the sockets connected to ``server_port`` from
    another port: the client sides (06 is TIME_WAIT, 05 FIN_WAIT2)."""
    states = []
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].split(":")[1], 16) == server_port:
            states.append(fields[3])
    return states


@pytest.mark.parametrize("reply", [b"HTTP/1.1 200 OK\r\n\r\nok", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n", None])
async def test_asking_leaves_no_client_port_behind(reply):
    """Whether the worker closes first, answers and then hangs, or answers nothing: a
    client port in TIME_WAIT would stay unbindable for a minute, and the supervisor's
    client ports may be a restarting worker's port."""
    server, port = await _server(reply)
    async with server:
        for _ in range(3):
            assert await ask_health("127.0.0.1", port, timeout=0.3) == (None if reply is None else 200)
        await asyncio.sleep(0.1)
        assert _client_sockets(port) == []
    await asyncio.sleep(0.1)
    assert _client_sockets(port) == []
