"""The supervisor's question to a worker's health endpoint: any HTTP answer is alive."""

from __future__ import annotations

import asyncio
import socket

from prober.daemon.supervisor import answers


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
    for reply, expected in ((b"HTTP/1.1 200 OK\r\n\r\nok", True), (b"HTTP/1.1 503 Service Unavailable\r\n\r\n", True),
                            (None, False), (b"garbage\r\n", False)):
        server, port = await _server(reply)
        async with server:
            assert await answers("127.0.0.1", port, timeout=0.5) is expected, reply
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert await answers("127.0.0.1", closed, timeout=0.5) is False
