"""The package as users install it: every import declared, locks true to pyproject.toml,
the private aiohttp seam unchanged, and a wheel that runs in a fresh environment."""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import inspect
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import aiohttp
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]

# sha256 of aiohttp's TCPConnector._wrap_create_connection source, for every release that
# prober.journey.http.TracingConnector was compared with (3.14.0 to 3.14.5: identical).
CHECKED_WRAP_CREATE_CONNECTION = {"7d64ce08361620999ae00b8d363d5ad2548ca247a43d79e0ef186b2032b8433f"}


def _requirements(specs: list[str]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, specs)}


def _lock(name: str) -> dict[str, str]:
    """``{distribution: version}`` pinned by ``requirements/NAME``."""
    text = (REPO / "requirements" / name).read_text()
    return {canonicalize_name(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s\\;]+)", text, re.M)}


def _third_party_imports(root: Path) -> dict[str, set[str]]:
    """Top-level modules imported by the files under ``root`` → the files importing them."""
    found: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "prober" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def test_every_import_of_the_package_is_a_declared_dependency() -> None:
    declared = set(_requirements(PROJECT["dependencies"]))
    providers = importlib.metadata.packages_distributions()
    undeclared = {}
    for module, files in _third_party_imports(REPO / "prober").items():
        distributions = {canonicalize_name(d) for d in providers.get(module, [module])}
        if not distributions & declared:
            undeclared[module] = sorted(files)
    assert undeclared == {}, f"imported but not in [project.dependencies] of pyproject.toml: {undeclared}"


def test_every_import_of_the_tests_is_declared_for_tests() -> None:
    declared = set(_requirements(PROJECT["dependencies"] + PROJECT["optional-dependencies"]["test"]))
    providers = importlib.metadata.packages_distributions()
    undeclared = {}
    for root in ("tests", "grafana", "benchmarks"):
        for module, files in _third_party_imports(REPO / root).items():
            distributions = {canonicalize_name(d) for d in providers.get(module, [module])}
            if module not in ("tests", "grafana", "benchmarks") and not distributions & declared:
                undeclared[module] = sorted(files)
    assert undeclared == {}, f"imported but declared neither as a dependency nor as a test extra: {undeclared}"


@pytest.mark.parametrize(
    ("lock", "groups"),
    [("runtime.txt", ["dependencies"]), ("test.txt", ["dependencies", "test"]),
     ("bench.txt", ["dependencies", "bench"])],
)
def test_locks_pin_a_version_inside_every_declared_range(lock: str, groups: list[str]) -> None:
    specs = [s for g in groups for s in (PROJECT[g] if g == "dependencies" else PROJECT["optional-dependencies"][g])]
    pinned = _lock(lock)
    wrong = {}
    for name, requirement in _requirements(specs).items():
        version = pinned.get(name)
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            wrong[name] = f"{requirement.specifier or 'any'} but requirements/{lock} has {version}"
    assert wrong == {}, f"requirements/{lock} is stale, run scripts/lock: {wrong}"


def test_test_lock_pins_the_runtime_lock_unchanged() -> None:
    runtime, test = _lock("runtime.txt"), _lock("test.txt")
    assert {name: test.get(name) for name in runtime} == runtime


def test_bench_lock_adds_to_the_test_lock_without_changing_it() -> None:
    """scripts/bench installs requirements/bench.txt over test.txt in the same .venv."""
    test, bench = _lock("test.txt"), _lock("bench.txt")
    assert {name: version for name, version in bench.items() if name in test and test[name] != version} == {}
    assert "py-spy" in bench


def test_the_aiohttp_seam_for_tcp_timing_has_not_moved() -> None:
    from prober.journey.http import TracingConnector

    method = getattr(aiohttp.TCPConnector, "_wrap_create_connection", None)
    assert method is not None, (
        f"aiohttp {aiohttp.__version__} has no TCPConnector._wrap_create_connection: "
        "prober.journey.http.TracingConnector overrides it to time the TCP handshake apart from TLS"
    )
    digest = hashlib.sha256(inspect.getsource(method).encode()).hexdigest()
    assert digest in CHECKED_WRAP_CREATE_CONNECTION, (
        f"aiohttp {aiohttp.__version__} changed TCPConnector._wrap_create_connection: bring "
        "prober.journey.http.TracingConnector._wrap_create_connection in line with it, then add "
        f"{digest} to CHECKED_WRAP_CREATE_CONNECTION and widen the aiohttp range in pyproject.toml"
    )
    connector_attributes = (
        "_local_addr_infos",
        "_happy_eyeballs_delay",
        "_interleave",
        "_socket_factory",
        "_ssl_shutdown_timeout",
        "_loop",
    )
    source = inspect.getsource(TracingConnector._wrap_create_connection)
    assert [
        a for a in connector_attributes if f"self.{a}" in inspect.getsource(method) and f"self.{a}" not in source
    ] == []


def _run(*cmd: str | Path, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)
    assert done.returncode == 0, (f"{' '.join(map(str, cmd))} exited {done.returncode}:\n"
                                  f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr


@pytest.mark.exclusive  # runs `prober demo`, whose journeys have 0.5 s budgets
def test_the_wheel_installed_into_a_fresh_environment_runs(tmp_path: Path) -> None:
    """Built and installed as the Dockerfile does (non-editable, from the runtime lock)."""
    dist, venv, work, source = tmp_path / "dist", tmp_path / "venv", tmp_path / "work", tmp_path / "source"
    work.mkdir()
    # Built from a copy of what the Dockerfile copies, so the build leaves nothing in the checkout.
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "prober", source / "prober", ignore=shutil.ignore_patterns("__pycache__"))
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, source, cwd=tmp_path)
    (wheel,) = dist.glob("bank_prober-*.whl")
    # Installed by this interpreter's pip (``--python``) into an environment without one of
    # its own, and not byte-compiled: neither pip's own installation nor compiling every
    # dependency (together ~15 s of this test's ~65 s) tests anything of the project; the
    # modules the checks below import are compiled as they load.
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python, prober = venv / "bin" / "python", venv / "bin" / "prober"
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", python]
    _run(*pip, "install", "-q", "--no-compile", "--require-hashes", "-r", REPO / "requirements" / "runtime.txt",
         cwd=tmp_path)
    _run(*pip, "install", "-q", "--no-compile", "--no-deps", wheel, cwd=tmp_path)
    _run(*pip, "check", cwd=tmp_path)  # the wheel's declared ranges hold in the lock

    # Only the fresh environment: no PYTHONPATH, nothing of the checkout importable from cwd.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SIMBANK_", "VIRTUAL_ENV"))}
    imported = _run(python, "-c", (
        "import importlib, pkgutil, prober\n"
        "assert 'site-packages' in prober.__file__, prober.__file__\n"
        "names = [m.name for m in pkgutil.walk_packages(prober.__path__, 'prober.')\n"
        "         if not m.name.endswith('__main__')]\n"
        "[importlib.import_module(n) for n in names]\n"
        "print(len(names), 'modules imported')"), cwd=work, env=env)
    assert int(imported.split()[0]) >= 40, imported

    # The status page's templates and stylesheet are package data: in the wheel, found there.
    _run(python, "-c", (
        "from prober.statuspage.page import environment, stylesheet\n"
        "environment().get_template('page.html'); environment().get_template('badge.svg')\n"
        "assert b'.grid' in stylesheet(90)"), cwd=work, env=env)
    assert "validate" in _run(prober, "--help", cwd=work, env=env)
    assert "valid (" in _run(prober, "validate", "-c", REPO / "config" / "simbank.toml", cwd=work, env=env)
    # A quiet bank: the default tour starts with intermittent logins, which may fail accounts.
    demo = _run(prober, "demo", "--duration", "5", "--interval", "0.5", "--port", "0", "--scenario", "none",
                cwd=work, env=env, timeout=60)
    assert "simbank/accounts (accounts): ok" in demo, demo[-3000:]
    assert "Traceback" not in demo
