"""Deployment files: docker compose, Dockerfile, systemd unit.

Docker cannot run here, so the compose file and the Dockerfile are checked by structure
(services, images, volumes, mounted paths that must exist in the repository, an
entrypoint that is a real command); the unit is checked by ``systemd-analyze verify``
(with a structural check as well, which also runs where systemd is missing).
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import yaml

from prober.cli import build_parser
from prober.config.access import exposure_problems
from prober.loading import load

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def _env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


def _generated_secrets(tmp_path: Path) -> Path:
    """deploy/secrets/generate run for real, in a copy of deploy/secrets."""
    secrets = tmp_path / "secrets"
    shutil.copytree(DEPLOY / "secrets", secrets, ignore=shutil.ignore_patterns("*.env"))
    done = subprocess.run([str(secrets / "generate")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    again = subprocess.run([str(secrets / "generate")], capture_output=True, text=True, timeout=30)
    assert again.returncode == 1 and "exists" in again.stderr  # never overwrites
    return secrets


def _service_env(service: dict, secrets: Path) -> dict[str, str]:
    """What a container's environment holds: its env_file (generated) and environment."""
    env: dict[str, str] = {}
    files = service.get("env_file", [])
    for name in [files] if isinstance(files, str) else files:
        assert name.startswith("./secrets/"), name
        env.update(_env_file(secrets / Path(name).name))
    env.update({k: str(v) for k, v in service.get("environment", {}).items()})
    return env


def _variables(text: str) -> set[str]:
    """Names of the ``$VAR`` / ``${VAR}`` / ``${VAR:?…}`` / ``${VAR:-…}`` a file reads."""
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))


def test_compose_images_are_pinned_and_no_client_gets_the_operator_token() -> None:
    services = _compose()["services"]
    for name in ("influxdb", "grafana"):
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+", services[name]["image"]), services[name]["image"]
    for name, service in services.items():
        assert "secrets" not in service, f"{name}: file secrets are unreadable by non-root containers"
        env = service.get("environment", {})
        assert not [k for k in env if "PASSWORD" in k or "TOKEN" in k], f"{name}: a secret inline in the compose file"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-slim-\w+$", dockerfile, re.M)


def test_compose_every_variable_read_is_set(tmp_path: Path) -> None:
    """Grafana's provisioning, the prober's TOML and InfluxDB's init script read only
    variables their container has, and the passwords InfluxDB grants are those the
    clients use."""
    services = _compose()["services"]
    secrets = _generated_secrets(tmp_path)
    for name in ("influxdb.env", "grafana.env", "prober.env"):
        assert stat.S_IMODE((secrets / name).stat().st_mode) == 0o600, name
    env = {name: _service_env(service, secrets) for name, service in services.items()}

    provisioning = ROOT / "grafana" / "provisioning"
    read_by_grafana = set().union(*(_variables(p.read_text()) for p in provisioning.rglob("*.yaml")))
    assert read_by_grafana - set(env["grafana"]) == set()
    assert {"BANK_PROBER_INFLUX_URL", "BANK_PROBER_INFLUX_PASSWORD"} <= read_by_grafana

    mounted = [spec.split(":")[0] for spec in services["prober"]["volumes"] if ":/etc/bank-prober/" in spec]
    read_by_prober = set().union(*(_variables((DEPLOY / m).read_text()) for m in mounted))
    defaulted = set().union(*(set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):-", (DEPLOY / m).read_text())) for m in mounted))
    assert read_by_prober - defaulted - set(env["prober"]) == set()

    initdb = [spec.split(":")[0] for spec in services["influxdb"]["volumes"] if "docker-entrypoint-initdb.d" in spec]
    (scripts,) = initdb
    set_by_image = {"DOCKER_INFLUXDB_INIT_BUCKET_ID", "DOCKER_INFLUXDB_INIT_ORG_ID"}
    for script in (DEPLOY / scripts).glob("*.sh"):
        assert script.stat().st_mode & stat.S_IXUSR, f"{script}: the image runs only executable scripts"
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
        assert _variables(script.read_text()) - set_by_image - set(env["influxdb"]) == set()

    assert env["prober"]["BANK_PROBER_INFLUX_PASSWORD"] == env["influxdb"]["BANK_PROBER_INFLUX_WRITE_PASSWORD"]
    assert env["grafana"]["BANK_PROBER_INFLUX_PASSWORD"] == env["influxdb"]["BANK_PROBER_INFLUX_READ_PASSWORD"]
    assert env["grafana"]["BANK_PROBER_INFLUX_USER"] == "grafana"
    assert env["psd2-daily"]["BANK_PROBER_INFLUX_PASSWORD"] == env["influxdb"]["BANK_PROBER_INFLUX_REPORT_PASSWORD"]
    assert "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN" not in env["prober"] | env["grafana"]


def test_compose_services_images_and_volumes() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"influxdb", "grafana", "bank", "prober", "psd2-daily"}
    assert "prober report -c /etc/bank-prober --write" in " ".join(services["psd2-daily"]["entrypoint"])
    assert services["psd2-daily"]["image"] == services["prober"]["image"]
    assert services["influxdb"]["image"].startswith("influxdb:2.")
    assert services["grafana"]["image"].startswith("grafana/grafana")
    env = services["influxdb"]["environment"]
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert {"DOCKER_INFLUXDB_INIT_ORG", "DOCKER_INFLUXDB_INIT_BUCKET"} <= set(env)
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
    env = _service_env(services["prober"], _generated_secrets(tmp_path))
    loaded = load(config_dir, env)
    influxdb = loaded.config.influxdb
    assert influxdb is not None and influxdb.api == "v1" and influxdb.database == "prober"
    assert influxdb.username == "bank-prober" and influxdb.password is not None
    assert influxdb.password.get_secret_value() == env["BANK_PROBER_INFLUX_PASSWORD"]
    assert loaded.config.daemon.health_listen == "0.0.0.0:9480"
    assert loaded.plans and all((p.browser.base_url if p.browser else p.steps[0].url({})).startswith("http://bank:8480")
                                for p in loaded.plans)
    # What `prober run` adds to loading: the internal routes on 0.0.0.0 are allowed explicitly.
    assert exposure_problems(loaded.config, str(config_dir)) == []
    assert loaded.config.access.allow_unauthenticated and not loaded.config.access.authenticates


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

    def get(word: str) -> list[str]:
        return [rest for w, rest in instructions if w == word]

    runs = get("RUN")
    assert any("pip install --require-hashes -r requirements/runtime.txt" in run for run in runs)
    assert any("pip install --no-deps ." in run for run in runs)
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
    parser.optionxform = str  # type: ignore[assignment]  # keep keys' case, as configparser's docs show
    parser.read(DEPLOY / "bank-prober.service")
    return parser


def test_systemd_unit_structure() -> None:
    unit = _unit()
    service = unit["Service"]
    assert service["Type"] == "simple"
    # Debian 12+ refuses pip into the system Python (PEP 668): the prober has its own venv.
    assert service["ExecStart"] == "/opt/bank-prober/bin/prober run -c /etc/bank-prober"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["Restart"] == "on-failure"
    assert service["User"] not in ("root", "") and service["StateDirectory"] == "bank-prober"
    # A credential the configuration does not use may be absent: none is loaded by the unit.
    assert "LoadCredential" not in service and "ConfigurationDirectory" not in service
    for option in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "RestrictAddressFamilies"):
        assert option in service, option
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    sysusers = (DEPLOY / "bank-prober.sysusers.conf").read_text()
    assert f"u {service['User']} " in sysusers


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    assert tool is not None, "systemd-analyze missing: scripts/test installs Debian's systemd package"
    # verify wants ExecStart to exist: point it at this environment's `prober`.
    prober = shutil.which("prober") or sys.executable
    unit = tmp_path / "bank-prober.service"
    unit.write_text((DEPLOY / "bank-prober.service").read_text().replace("/opt/bank-prober/bin/prober", prober))
    done = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (done.stdout + done.stderr).splitlines() if "bank-prober.service" in line]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr


def test_the_healthcheck_asks_the_address_that_answers_for_every_worker(tmp_path: Path) -> None:
    """Docker's HEALTHCHECK, the compose file's published port and the prober's
    health_listen (default and compose) are one port: the one a supervisor of workers
    answers on for all of them, so they stay true with `run --workers N`."""
    from prober.config.daemon import DaemonConfig, split_listen
    from prober.daemon.sharding import worker_port

    (healthcheck,) = [rest for word, rest in _dockerfile() if word == "HEALTHCHECK"]
    (asked,) = re.findall(r"http://127\.0\.0\.1:(\d+)/healthz", healthcheck)
    exposed = [rest for word, rest in _dockerfile() if word == "EXPOSE"]
    default = split_listen(DaemonConfig().health_listen)
    compose_toml = (DEPLOY / "prober" / "10-daemon.toml").read_text()
    (in_compose,) = re.findall(r'^health_listen = "0\.0\.0\.0:(\d+)"', compose_toml, re.M)
    published = [p.rsplit(":", 2)[-2:] for p in _compose()["services"]["prober"]["ports"]]
    assert default is not None and int(asked) == default[1] == int(in_compose)
    assert exposed == [asked] and [asked, asked] in published
    assert worker_port(int(asked), 1) == int(asked) + 1  # the workers never take it
    unit = (DEPLOY / "bank-prober.service").read_text()
    assert "answers /healthz for every worker" in unit


def test_systemd_analyze_verify_psd2_daily_timer(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    assert tool is not None, "systemd-analyze missing: scripts/test installs Debian's systemd package"
    prober = shutil.which("prober") or sys.executable
    for name in ("bank-prober-psd2-daily.service", "bank-prober-psd2-daily.timer"):
        (tmp_path / name).write_text((DEPLOY / name).read_text().replace("/opt/bank-prober/bin/prober", prober))
    done = subprocess.run(
        [
            tool,
            "verify",
            str(tmp_path / "bank-prober-psd2-daily.timer"),
            str(tmp_path / "bank-prober-psd2-daily.service"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [line for line in (done.stdout + done.stderr).splitlines() if "psd2-daily" in line]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr
    service = (DEPLOY / "bank-prober-psd2-daily.service").read_text()
    assert "ExecStart=/opt/bank-prober/bin/prober report -c /etc/bank-prober --write" in service
