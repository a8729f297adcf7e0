"""What the benchmark scripts share: free ports, the simulated bank in its own process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_run(count: int) -> int:
    """A port ``p`` with ``p`` … ``p + count - 1`` free (the supervisor's and its workers')."""
    for _ in range(50):
        with socket.socket() as first:  # held while the others are tried
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            others = []
            try:
                for k in range(1, count):
                    sock = socket.socket()
                    others.append(sock)
                    sock.bind(("127.0.0.1", port + k))
            except OSError:
                continue
            finally:
                for sock in others:
                    sock.close()
            return port
    raise RuntimeError(f"no {count} consecutive free ports")


def proc_cpu(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid``, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def timed_request(sock: socket.socket, request: bytes) -> float:
    """Send ``request`` on a kept-alive blocking socket and read the whole answer (its
    ``Content-Length``); the milliseconds from just before sending to the last byte.
    The leanest client there is: the reference the prober's latency is compared with."""
    started = time.perf_counter()
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return (time.perf_counter() - started) * 1000.0


def wait_http(url: str, timeout: float = 20.0) -> None:
    """Wait until ``url`` answers; raises ``RuntimeError`` naming it otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout:g}s")


def start_bank() -> tuple[subprocess.Popen, str]:
    """``prober bank`` on a free port in a separate process (its CPU is not ours)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "prober", "bank", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz")
    except RuntimeError:
        proc.kill()
        raise
    return proc, url
