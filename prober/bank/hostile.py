"""A hostile HTTP server: answers built to exhaust or confuse a client.

Each path is one hostile answer; the query may size it (``?size=`` in bytes, ``?delay=``
in seconds). The server speaks HTTP/1.1 by hand on raw asyncio streams, because most of
these answers are ones a well-behaved framework refuses to produce (a body shorter than
its ``Content-Length``, a header line of a megabyte, a stream that never ends)::

    async with HostileServer() as hostile:
        ...  # probe hostile.url + "/gzip-bomb?size=1073741824"

========================== ===============================================================
``/ok``                     a small JSON answer (the control case)
``/big?size=N``             a body of N bytes with its ``Content-Length``
``/endless``                a chunked body that never ends, sent as fast as it is read
``/gzip-bomb?size=N``       N zero bytes gzip-compressed (about 1,000:1), ``Content-Length``
``/deflate-bomb?size=N``    the same as raw deflate, chunked
``/endless-gzip``           a gzip body of zeros that never ends
``/br`` and ``/zstd``       a body claiming an encoding the client may not support
``/bad-gzip``               ``Content-Encoding: gzip`` over bytes that are not gzip
``/cut-short``              ``Content-Length`` promises more than is sent, then close
``/cut-chunked``            a chunked body closed before its last chunk
``/bad-chunk``              a chunk-size line that is not hexadecimal
``/slow-body?delay=S``      headers at once, then one body byte every S seconds, forever
``/slow-headers?delay=S``   the status line and headers one byte every S seconds
``/huge-header?size=N``     one header value of N bytes
``/many-headers?size=N``    N small headers
``/bad-charset``            JSON with a charset no codec knows and bytes that are not UTF-8
``/silent``                 accepts the request and never answers
========================== ===============================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

_BLOCK = 1 << 20
_CHUNK = 1 << 16


def _zero_block_deflate() -> bytes:
    """Raw deflate of one block of zeros, ending on a full flush so that the same bytes
    repeated k times are a valid deflate stream of k blocks (about 1 KiB per MiB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(bytes(_BLOCK)) + compressor.flush(zlib.Z_FULL_FLUSH)


_ZERO_BLOCK = _zero_block_deflate()
_FINAL_BLOCK = b"\x03\x00"  # an empty final deflate block
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"

Handler = Callable[[asyncio.StreamWriter, dict[str, str]], Awaitable[None]]


def _head(status: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers), "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()
    # drain() returns without suspending while the kernel takes the data; yield anyway,
    # so that a server sharing its loop with the client under test never hogs it.
    await asyncio.sleep(0)


def _size(query: dict[str, str], default: int) -> int:
    return int(query.get("size", default))


def _delay(query: dict[str, str], default: float) -> float:
    return float(query.get("delay", default))


async def _ok(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
    body = b'{"status": "ok"}'
    await _send(writer, _head("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]) + body)


async def _big(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
    size = _size(query, 200 << 20)
    await _send(writer, _head("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))]))
    block = b"x" * _CHUNK
    left = size
    while left > 0:
        await _send(writer, block[: min(left, _CHUNK)])
        left -= _CHUNK


async def _endless(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
    await _send(writer, _head("200 OK", [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]))
    chunk = _chunk(b"[" * _CHUNK)
    while True:
        await _send(writer, chunk)


async def _zero_blocks(writer: asyncio.StreamWriter, blocks: int | None, framed: bool) -> int:
    """Send ``blocks`` deflated zero blocks (forever when None); returns the CRC-32 of
    what they inflate to (0 for an endless stream, which has no trailer)."""
    crc, sent = 0, 0
    zeros = bytes(_BLOCK)
    piece = _chunk(_ZERO_BLOCK) if framed else _ZERO_BLOCK
    while blocks is None or sent < blocks:
        await _send(writer, piece)
        if blocks is not None:
            crc = zlib.crc32(zeros, crc)
        sent += 1
    return crc


async def _gzip_bomb(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
    blocks = max(1, _size(query, 2 << 30) // _BLOCK)
    length = len(_GZIP_HEADER) + blocks * len(_ZERO_BLOCK) + len(_FINAL_BLOCK) + 8
    await _send(writer, _head("200 OK", [("Content-Type", "application/json"), ("Content-Encoding", "gzip"),
                                         ("Content-Length", str(length))]) + _GZIP_HEADER)
    crc = await _zero_blocks(writer, blocks, framed=False)
    await _send(writer, _FINAL_BLOCK + struct.pack("<II", crc, (blocks * _BLOCK) & 0xFFFFFFFF))


async def _deflate_bomb(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
    blocks = max(1, _size(query, 2 << 30) // _BLOCK)
    await _send(writer, _head("200 OK", [("Content-Type", "application/json"), ("Content-Encoding", "deflate"),
                                         ("Transfer-Encoding", "chunked")]))
    await _zero_blocks(writer, blocks, framed=True)
    await _send(writer, _chunk(_FINAL_BLOCK) + b"0\r\n\r\n")


async def _endless_gzip(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
    await _send(writer, _head("200 OK", [("Content-Type", "application/json"), ("Content-Encoding", "gzip"),
                                         ("Transfer-Encoding", "chunked")]) + _chunk(_GZIP_HEADER))
    await _zero_blocks(writer, None, framed=True)


def _claimed_encoding(encoding: str) -> Handler:
    async def handler(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
        body = b"\x00\x01\x02 not really " + encoding.encode()
        await _send(writer, _head("200 OK", [("Content-Encoding", encoding), ("Content-Length", str(len(body)))]) + body)
    return handler


async def _bad_gzip(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
    body = b'{"this": "is not gzip"}' * 100
    await _send(writer, _head("200 OK", [("Content-Type", "application/json"), ("Content-Encoding", "gzip"),
                                         ("Content-Length", str(len(body)))]) + body)


async def _cut_short(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
    await _send(writer, _head("200 OK", [("Content-Type", "application/json"), ("Content-Length", "100000")]))
    await _send(writer, b'{"accounts": [' + b" " * 5000)


async def _cut_chunked(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
    await _send(writer, _head("200 OK", [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]))
    await _send(writer, _chunk(b'{"accounts": [') + _chunk(b" " * 5000))


async def _bad_chunk(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
    await _send(writer, _head("200 OK", [("Transfer-Encoding", "chunked")]) + _chunk(b"{}") + b"zz\r\nxx\r\n")
    await asyncio.sleep(5)


async def _slow_body(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
    delay = _delay(query, 0.5)
    await _send(writer, _head("200 OK", [("Content-Type", "application/json"), ("Content-Length", "1000000")]))
    while True:
        await _send(writer, b" ")
        await asyncio.sleep(delay)


async def _slow_headers(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
    delay = _delay(query, 0.5)
    head = _head("200 OK", [(f"X-Slow-{i}", "x" * 50) for i in range(100)] + [("Content-Length", "0")])
    for i in range(len(head)):
        await _send(writer, head[i:i + 1])
        await asyncio.sleep(delay)


async def _huge_header(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
    size = _size(query, 1 << 20)
    await _send(writer, b"HTTP/1.1 200 OK\r\nX-Huge: ")
    block = b"h" * _CHUNK
    for start in range(0, size, _CHUNK):
        await _send(writer, block[: min(_CHUNK, size - start)])
    await _send(writer, b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


async def _many_headers(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
    count = _size(query, 100_000)
    await _send(writer, b"HTTP/1.1 200 OK\r\n")
    for start in range(0, count, 1000):
        await _send(writer, b"".join(b"X-H%d: v\r\n" % i for i in range(start, min(count, start + 1000))))
    await _send(writer, b"Content-Length: 0\r\nConnection: close\r\n\r\n")


async def _bad_charset(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
    body = b'{"name": "\xff\xfe\xc3\x28 caf\xe9"}'
    await _send(writer, _head("200 OK", [("Content-Type", "application/json; charset=x-no-such-charset"),
                                         ("Content-Length", str(len(body)))]) + body)


async def _silent(writer: asyncio.StreamWriter, query: dict[str, str]) -> None:
    await asyncio.sleep(3600)


CASES: dict[str, Handler] = {
    "ok": _ok,
    "big": _big,
    "endless": _endless,
    "gzip-bomb": _gzip_bomb,
    "deflate-bomb": _deflate_bomb,
    "endless-gzip": _endless_gzip,
    "br": _claimed_encoding("br"),
    "zstd": _claimed_encoding("zstd"),
    "bad-gzip": _bad_gzip,
    "cut-short": _cut_short,
    "cut-chunked": _cut_chunked,
    "bad-chunk": _bad_chunk,
    "slow-body": _slow_body,
    "slow-headers": _slow_headers,
    "huge-header": _huge_header,
    "many-headers": _many_headers,
    "bad-charset": _bad_charset,
    "silent": _silent,
}
"""Every hostile answer, by path (without the leading slash)."""


class HostileServer:
    """A raw HTTP/1.1 server on ``host:port`` (0 = a free port) serving :data:`CASES`.

    Every answer closes its connection. ``url`` is the base URL with the bound port.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> HostileServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode("latin-1")
            parts = urlsplit(target)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            handler = CASES.get(parts.path.strip("/"))
            if handler is None:
                await _send(writer, _head("404 Not Found", [("Content-Length", "0")]))
            else:
                await handler(writer, query)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, IndexError):
            pass
        except asyncio.CancelledError:
            # Only stop() cancels; ending normally keeps asyncio from logging the
            # cancelled connection task as an error.
            pass
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def serve_forever(host: str = "127.0.0.1", port: int = 0) -> None:
    """Run a :class:`HostileServer` until cancelled; prints its URL first."""
    async with HostileServer(host, port) as server:
        print(server.url, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    import sys

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0))
