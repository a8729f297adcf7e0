"""Deployment files: docker compose, Dockerfile, systemd unit.

Docker cannot run here, so the compose file and the Dockerfile are checked by structure
(services, images, volumes, mounted paths that must exist in the repository, an
entrypoint that is a real command); the unit is checked by ``systemd-analyze verify``
(with a structural check as well, which also runs where systemd is missing).
"""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from prober.cli import build_parser
from prober.config.loader import load

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_compose_services_images_and_volumes() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"influxdb", "grafana", "bank", "prober"}
    assert services["influxdb"]["image"] == "influxdb:2"
    assert services["grafana"]["image"].startswith("grafana/grafana")
    env = services["influxdb"]["environment"]
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert {"DOCKER_INFLUXDB_INIT_ORG", "DOCKER_INFLUXDB_INIT_BUCKET", "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE"} <= set(env)
    assert "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN" not in env  # never inline: a secret file
    for name in ("bank", "prober"):
        build = services[name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == ROOT / "Dockerfile"
    assert services["bank"]["command"][0] == "bank"
    assert services["prober"]["command"] == ["run", "-c", "/etc/bank-prober"]

    named = set(compose["volumes"])
    mounts: dict[str, list[tuple[str, str, str]]] = {}
    for name, service in services.items():
        for spec in service.get("volumes", []):
            source, target, *mode = spec.split(":")
            mounts.setdefault(name, []).append((source, target, mode[0] if mode else "rw"))
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name}: {source} is mounted but missing from the repository"
            else:
                assert source in named, f"{name}: volume {source} is not declared"
    grafana = {t: s for s, t, _ in mounts["grafana"]}
    assert grafana["/etc/grafana/provisioning"] == "../grafana/provisioning"
    assert grafana["/var/lib/grafana/dashboards"] == "../grafana/dashboards"
    prober = {t: (s, m) for s, t, m in mounts["prober"]}
    assert all(m == "ro" for t, (s, m) in prober.items() if t.startswith("/etc/bank-prober"))
    assert prober["/var/lib/bank-prober"][0] in named  # spool and state on a volume
    for service in services.values():
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"]
    assert services["prober"]["stop_grace_period"] == "40s"


def test_compose_prober_configuration_is_valid(tmp_path: Path) -> None:
    """The files mounted into /etc/bank-prober, merged as the container merges them."""
    services = _compose()["services"]
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    for spec in services["prober"]["volumes"]:
        source, target, *_ = spec.split(":")
        if target.startswith("/etc/bank-prober/"):
            shutil.copy(DEPLOY / source, config_dir / Path(target).name)
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    text = (config_dir / "10-daemon.toml").read_text().replace("/run/secrets/influxdb-admin-token", str(token))
    (config_dir / "10-daemon.toml").write_text(text)
    loaded = load(config_dir, {**services["prober"]["environment"]})
    assert loaded.config.influxdb is not None and loaded.config.influxdb.bucket == "prober"
    assert loaded.config.daemon.health_listen == "0.0.0.0:9480"
    assert loaded.plans and all(p.steps[0].url({}).startswith("http://bank:8480") for p in loaded.plans)


def _dockerfile() -> list[tuple[str, str]]:
    lines, current = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        if raw.lstrip().startswith("#"):
            continue
        current += raw.rstrip("\\").strip() + " " if raw.rstrip().endswith("\\") else raw.strip()
        if not raw.rstrip().endswith("\\"):
            if current.strip():
                word, _, rest = current.strip().partition(" ")
                lines.append((word.upper(), rest.strip()))
            current = ""
    return lines


def test_dockerfile() -> None:
    instructions = _dockerfile()
    get = lambda word: [rest for w, rest in instructions if w == word]  # noqa: E731
    assert get("FROM") == ["python:3.11-slim"]
    assert any("pip install ." in run for run in get("RUN"))
    user = get("USER")
    assert user and user[-1] not in ("root", "0")
    assert get("STOPSIGNAL") == ["SIGTERM"]
    assert any("/healthz" in h for h in get("HEALTHCHECK"))
    entrypoint = json.loads(get("ENTRYPOINT")[-1])
    cmd = json.loads(get("CMD")[-1])
    assert entrypoint == ["prober"] and cmd == ["run", "-c", "/etc/bank-prober"]
    # The entrypoint is the console script of the package and the command parses.
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'prober = "prober.cli:main"' in pyproject
    args = build_parser().parse_args(cmd)
    assert args.func.__name__ == "cmd_run"
    for source in [rest.split()[0] for w, rest in instructions if w == "COPY"]:
        assert (ROOT / source).exists(), f"COPY {source}: missing"
    done = subprocess.run([sys.executable, "-m", "prober", cmd[0], "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--config" in done.stdout


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment]
    parser.read(DEPLOY / "bank-prober.service")
    return parser


def test_systemd_unit_structure() -> None:
    unit = _unit()
    service = unit["Service"]
    assert service["Type"] == "simple"
    assert service["ExecStart"] == "/usr/local/bin/prober run -c /etc/bank-prober"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["Restart"] == "on-failure"
    assert service["User"] not in ("root", "") and service["StateDirectory"] == "bank-prober"
    assert "LoadCredential" in service
    for option in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "RestrictAddressFamilies"):
        assert option in service, option
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    sysusers = (DEPLOY / "bank-prober.sysusers.conf").read_text()
    assert f"u {service['User']} " in sysusers


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:  # the structural test above still runs
        return
    # verify wants ExecStart to exist: point it at this environment's `prober`.
    prober = shutil.which("prober") or sys.executable
    unit = tmp_path / "bank-prober.service"
    unit.write_text((DEPLOY / "bank-prober.service").read_text().replace("/usr/local/bin/prober", prober))
    done = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (done.stdout + done.stderr).splitlines() if "bank-prober.service" in line]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr
