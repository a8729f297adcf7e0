"""The layers of docs/ARCHITECTURE.md, kept by the imports: shared vocabulary at the bottom,
behaviour packages that do not import each other, one place that composes them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROBER = Path(__file__).resolve().parent.parent / "prober"

LEAVES = ["results.py", "redact.py", "timefmt.py", "waiting.py", "atomic.py", "eventloop.py", "certfacts.py",
          "config/types.py", "config/unions.py"]
"""Shared vocabulary: imports nothing of the project."""
LEAF_MODULES = {leaf.removesuffix(".py").replace("/", ".") for leaf in LEAVES}
"""The leaves as module names: any package may import them."""

FORBIDDEN = {
    # package: project packages it must not import
    "journey": {"writer", "incidents", "notify", "daemon", "statuspage", "report", "output", "certificates"},
    "writer": {"journey", "incidents", "notify", "daemon", "statuspage", "report", "output", "certificates"},
    "notify": {"config", "journey", "writer", "incidents", "daemon", "statuspage", "report", "output", "certificates"},
    "output": {"journey", "writer", "incidents", "notify", "daemon", "statuspage", "report", "certificates"},
    "report": {"journey", "writer", "incidents", "notify", "daemon", "statuspage", "output", "certificates"},
    "incidents": {"journey", "writer", "notify", "daemon", "statuspage", "report", "output", "certificates"},
    # The prober's own certificates and the warning ladder: reads files, decides nothing else.
    "certificates": {"journey", "writer", "incidents", "notify", "daemon", "statuspage", "report", "output",
                     "access"},
    # Config is read first and compiles nothing (prober/loading.py compiles the plans).
    # It may import prober.notify.providers: each notifier owns its settings model, and
    # notify imports nothing of config, so there is no cycle.
    "config": {"journey", "writer", "incidents", "daemon", "statuspage", "report", "output", "access",
               "certificates"},
    # The status page shows what the daemon hands it (statuspage.PageSource: typed
    # incident status, latest runs, maintenance windows, the daily history); it reads
    # nothing of the daemon's internals, and renders, never probes, writes or notifies.
    "statuspage": {"daemon", "journey", "writer", "notify", "report", "output"},
    # Who may see what on the prober's own listeners: applies [access], serves nothing itself.
    "access": {"journey", "writer", "incidents", "notify", "daemon", "statuspage", "report", "output",
               "certificates"},
    # The simulated bank is the prober's counterpart, not a part of it: it checks what the
    # prober sends from the standards' texts, so it shares no code with the prober's
    # behaviour (a bug shared by signer and verifier would pass both).
    "simbank": {"config", "journey", "writer", "incidents", "notify", "daemon", "statuspage", "report", "output",
                "loading", "cli", "listener", "access", "certificates"},
}


def _imports(path: Path) -> set[str]:
    """``prober.X`` modules imported by ``path`` (``X`` dotted), top level or not."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("prober."))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("prober"):
            found.add(node.module or "")
    return {name.removeprefix("prober.") for name in found if name != "prober"}


@pytest.mark.parametrize("leaf", LEAVES)
def test_shared_vocabulary_imports_nothing_of_the_project(leaf: str) -> None:
    assert _imports(PROBER / leaf) == set()


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_behaviour_packages_do_not_import_each_other(package: str) -> None:
    crossings = {
        f"{path.relative_to(PROBER)} imports prober.{name}"
        for path in (PROBER / package).rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] in FORBIDDEN[package] and name not in LEAF_MODULES
    }
    assert crossings == set()
