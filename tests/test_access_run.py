"""``[access]`` with the real ``prober run`` and ``prober validate`` in their own processes.

* internal routes on a network address without credentials: refused (exit 2, one line
  with the reason and the fix), by ``validate``, by ``run`` and by ``run --workers``,
  before anything listens; the public page alone may listen anywhere;
* ``allow_unauthenticated = true``: it starts, with a warning naming what it exposes;
* ``--workers 2`` with TLS and a bearer token: the supervisor asks its workers' health
  over TLS (its own /healthz turns 200 only so), every listener of the tree wants the
  token, and a SIGHUP replaces the token everywhere without a restart.
"""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import trustme

from benchmarks.support import free_port_run
from prober.simbank import BankServer
from tests.daemon_helpers import ProberProcess, check, config_text, get_json, wait_for

OLD_TOKEN = "old-token-5a1f0e9d8c7b6a5f"
NEW_TOKEN = "new-token-0b1c2d3e4f5a6b7c"


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def write_config(tmp_path: Path, bank_url: str, daemon: dict, extra: str = "") -> Path:
    path = tmp_path / "prober.toml"
    path.write_text(config_text(bank_url, [check("login", interval="1s")],
                                daemon={"state_dir": str(tmp_path / "state"), **daemon}) + extra)
    return path


@pytest.mark.parametrize(("daemon", "extra", "field"), [
    ({"health_listen": "0.0.0.0:{port}"}, "", "daemon.health_listen"),
    ({"health_listen": "127.0.0.1:{port}"}, '[status_page]\nlisten = "0.0.0.0:{page}"\n', "status_page.listen"),
])
@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
async def test_internal_routes_on_the_network_without_credentials_are_refused(
        bank: BankServer, tmp_path: Path, daemon: dict, extra: str, field: str, workers: list[str]) -> None:
    port, page = free_port_run(2), free_port_run(1)
    daemon = {k: v.format(port=port) for k, v in daemon.items()}
    path = write_config(tmp_path, bank.url, daemon, extra.format(page=page))
    validate = subprocess.run([sys.executable, "-m", "prober", "validate", "-c", str(path)],
                              capture_output=True, text=True, timeout=60)
    assert validate.returncode == 2 and validate.stdout == "", validate
    (line,) = validate.stderr.splitlines()
    assert line.startswith(f"config error: {path}: {field}: ") and "without authentication" in line
    assert line.endswith("add [[access.tokens]] or [[access.users]], listen on 127.0.0.1, "
                         "or set [access] allow_unauthenticated = true")

    prober = await ProberProcess(["run", "-c", str(path), *workers], tmp_path).start()
    try:
        code = await prober.wait(30)
    finally:
        await prober.kill()
    assert code == 2, prober.log
    assert prober.log.strip().splitlines() == [line], prober.log
    assert not listening(port) and not listening(page)


async def test_the_public_page_may_listen_anywhere(bank: BankServer, tmp_path: Path) -> None:
    port, page = free_port_run(1), free_port_run(1)
    path = write_config(tmp_path, bank.url, {"health_listen": f"127.0.0.1:{port}"},
                        f'[status_page]\nlisten = "0.0.0.0:{page}"\npublic = true\n')
    prober = await ProberProcess(["run", "-c", str(path)], tmp_path).start()
    try:
        await wait_for(lambda: listening(page) and listening(port), timeout=30, what="both listeners")
        assert (await get_json(f"http://127.0.0.1:{page}/api/v1/status"))[0] == 200
        prober.signal(signal.SIGTERM)
        assert await prober.wait(30) == 0, prober.log
    finally:
        await prober.kill()
    assert "allow_unauthenticated" not in prober.log


async def test_allowing_it_explicitly_starts_with_a_warning(bank: BankServer, tmp_path: Path) -> None:
    port = free_port_run(1)
    path = write_config(tmp_path, bank.url, {"health_listen": f"0.0.0.0:{port}"},
                        "[access]\nallow_unauthenticated = true\n")
    prober = await ProberProcess(["run", "-c", str(path)], tmp_path).start()
    try:
        async def up() -> bool:
            try:
                return (await get_json(f"http://127.0.0.1:{port}/status"))[0] == 200
            except OSError:
                return False

        await wait_for(up, timeout=30, what="/status without a credential")
        prober.signal(signal.SIGTERM)
        assert await prober.wait(30) == 0, prober.log
    finally:
        await prober.kill()
    warnings = [line for line in prober.log.splitlines() if "allow_unauthenticated = true" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0], prober.log
    assert f"daemon.health_listen '0.0.0.0:{port}' serves the internal routes (/status" in warnings[0]


async def test_workers_with_tls_and_a_token_replaced_by_a_reload(bank: BankServer, tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
    port = free_port_run(3)

    def access(token: str) -> str:
        return (f'[access.tls]\ncert_file = "{tmp_path}/tls.crt"\nkey_file = "{tmp_path}/tls.key"\n'
                f'[[access.tokens]]\nname = "prometheus"\ntoken = "{token}"\n')

    # Polled every 2 s (a quarter of it): often enough for the test, and a worker busy
    # reloading on a loaded machine is not taken for a stuck one (restarts stay 0).
    path = write_config(tmp_path, bank.url, {"health_listen": f"127.0.0.1:{port}", "worker_stall_timeout": "8s"},
                        access(OLD_TOKEN))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    supervisor, workers = f"https://127.0.0.1:{port}", [f"https://127.0.0.1:{port + k}" for k in (1, 2)]
    prober = await ProberProcess(["run", "-c", str(path), "--workers", "2"], tmp_path).start()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:

        async def code(url: str, token: str | None = None) -> int:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            try:
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    return response.status
            except aiohttp.ClientConnectionError:
                return 0

        try:
            # 200 only once the supervisor has had a 200 from each worker, over TLS.
            async def healthy() -> bool:
                return await code(supervisor + "/healthz") == 200

            await wait_for(healthy, timeout=60, interval=0.2, what=f"the supervisor's /healthz ({prober.log_path})")
            for base in (supervisor, *workers):
                assert await code(base + "/healthz") == 200
                assert await code(base + "/status") == 401
                assert await code(base + "/status", NEW_TOKEN) == 401
                assert await code(base + "/status", OLD_TOKEN) == 200
            assert await code(workers[0] + "/", OLD_TOKEN) == 200  # the internal page, on the worker's listener
            assert await code(workers[0] + "/") == 401

            # Rotation: the new token replaces the old one, on every listener, no restart.
            path.write_text(path.read_text().replace(OLD_TOKEN, NEW_TOKEN))
            prober.signal(signal.SIGHUP)

            async def rotated() -> bool:
                for base in (supervisor, *workers):
                    if await code(base + "/status", NEW_TOKEN) != 200 or await code(base + "/status", OLD_TOKEN) != 401:
                        return False
                return True

            await wait_for(rotated, timeout=30, interval=0.2, what="the new token everywhere, the old one nowhere")
            # An invalid file (a token too short): refused by each process, the new token stays.
            path.write_text(path.read_text().replace(NEW_TOKEN, "short"))
            prober.signal(signal.SIGHUP)
            await wait_for(lambda: "the supervisor keeps its [access] credentials" in prober.log, timeout=30,
                           what="the supervisor to refuse the invalid file")
            await wait_for(lambda: prober.log.count("keeping the running configuration") == 2, timeout=30,
                           what="both workers to refuse the invalid file")
            for base in (supervisor, *workers):
                assert await code(base + "/status", NEW_TOKEN) == 200
            async with session.get(supervisor + "/status", headers={"Authorization": f"Bearer {NEW_TOKEN}"}) as r:
                status = await r.json()
            assert [w["restarts"] for w in status["workers"]] == [0, 0]  # reloaded, not restarted
            assert [w["health"] for w in status["workers"]] == [f"{url}/healthz" for url in workers]
            prober.signal(signal.SIGTERM)
            exit_code = await prober.wait(40)
        finally:
            await prober.kill()
    assert exit_code == 0, prober.log[-3000:]
    assert "Traceback" not in prober.log and OLD_TOKEN not in prober.log and NEW_TOKEN not in prober.log


async def test_a_reload_that_would_expose_internal_routes_is_refused(bank: BankServer, tmp_path: Path) -> None:
    """Credentials taken out of a configuration listening on 0.0.0.0: the reload is refused
    like an invalid file, and the running credentials stay."""
    port = free_port_run(1)
    path = write_config(tmp_path, bank.url, {"health_listen": f"0.0.0.0:{port}"},
                        f'[[access.tokens]]\nname = "ops"\ntoken = "{OLD_TOKEN}"\n')
    prober = await ProberProcess(["run", "-c", str(path)], tmp_path).start()
    url = f"http://127.0.0.1:{port}/status"

    async def status(token: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
                return response.status
        except aiohttp.ClientConnectionError:
            return 0

    try:
        async def up() -> bool:
            return await status(OLD_TOKEN) == 200

        await wait_for(up, timeout=30, what="/status with the token")
        path.write_text(path.read_text().split("[[access.tokens]]")[0])
        prober.signal(signal.SIGHUP)
        await wait_for(lambda: "keeping the running configuration" in prober.log, timeout=30, what="the refusal")
        assert f"config error: {path}: daemon.health_listen: '0.0.0.0:{port}' would serve" in prober.log
        assert await status() == 401 and await status(OLD_TOKEN) == 200
        prober.signal(signal.SIGTERM)
        assert await prober.wait(30) == 0
    finally:
        await prober.kill()
