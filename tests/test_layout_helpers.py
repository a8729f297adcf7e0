"""Test modules hold tests: what several of them share lives in a helpers module
(``tests/*_helpers.py``, ``tests/fixtures/``), never in another test module, whose
import would collect or run it twice under pytest's import modes."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_no_test_module_imports_another() -> None:
    found = []
    for path in sorted(TESTS.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests.test_"):
                found.append(f"{path.name}:{node.lineno}: from {node.module} import …")
            elif isinstance(node, ast.Import):
                found += [f"{path.name}:{node.lineno}: import {a.name}" for a in node.names
                          if a.name.startswith("tests.test_")]
    assert found == [], "\n".join(found)
