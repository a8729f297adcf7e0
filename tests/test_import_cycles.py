"""No hidden import cycles: an import inside a function must not be the way round a circle.

Python lets two modules import each other when one of them does it inside a function,
after both are loaded; the circle is then invisible until someone moves the import to
the top. So every import written inside a function (or a method) of a project module
``A``, of a module ``B``, is checked: ``B``, by its own top-level imports, directly or
through other modules, must not import ``A`` back. Imports under ``if TYPE_CHECKING:``
are for the type checker only and never run, so they are not followed.

An import of ``prober.x.y`` runs ``prober/x/__init__.py`` first, but a module only
*started* there is enough for a submodule to load, so that is no circle; an import of
the package itself (``from prober.x import name``) needs its ``__init__`` to have run,
and is followed.
"""

from __future__ import annotations

import ast
from functools import cached_property
from pathlib import Path

PROBER = Path(__file__).resolve().parent.parent / "prober"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class Module:
    """One module of the package: what it imports when loaded, and inside functions."""

    def __init__(self, graph: ImportGraph, name: str, path: Path) -> None:
        self.graph = graph
        self.name = name
        self.path = path

    def targets(self, node: ast.Import | ast.ImportFrom) -> set[str]:
        """The modules an import statement needs loaded (``from pkg import mod``: ``pkg``
        and ``pkg.mod``; ``from pkg.mod import function``: ``pkg.mod``)."""
        if isinstance(node, ast.Import):
            names = {alias.name for alias in node.names}
        else:
            base = node.module or ""
            if node.level:
                package = self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            names = {base} | {f"{base}.{alias.name}" for alias in node.names}
        return {name for name in names if name in self.graph.modules} - {self.name}

    @cached_property
    def imports(self) -> tuple[frozenset[str], tuple[tuple[int, str], ...]]:
        """(modules imported when it is loaded, ``(line, module)`` imported inside functions)."""
        at_load: set[str] = set()
        deferred: list[tuple[int, str]] = []

        def visit(node: ast.AST, in_function: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and _is_type_checking(child):
                    for other in child.orelse:
                        visit(ast.Module(body=[other], type_ignores=[]), in_function)
                elif isinstance(child, (ast.Import, ast.ImportFrom)):
                    if in_function:  # its own packages were loaded before it
                        fresh = {t for t in self.targets(child) if not self.name.startswith(t + ".")}
                        deferred.extend((child.lineno, target) for target in sorted(fresh))
                    else:
                        at_load.update(self.targets(child))
                else:
                    visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

        visit(ast.parse(self.path.read_text(), str(self.path)), False)
        return frozenset(at_load), tuple(deferred)


class ImportGraph:
    """The modules of the package under ``root`` (a directory named as the package)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: dict[str, Module] = {}
        for path in root.rglob("*.py"):
            parts = path.relative_to(root.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            self.modules[name] = Module(self, name, path)

    def loads(self, start: str) -> set[str]:
        """Every module that loading ``start`` loads, through top-level imports."""
        seen = {start}
        todo = [start]
        while todo:
            for target in self.modules[todo.pop()].imports[0]:
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    def hidden_cycles(self) -> list[str]:
        """``file:line imports B inside a function, and B imports A back`` for each such import."""
        out = []
        for name in sorted(self.modules):
            module = self.modules[name]
            for line, target in module.imports[1]:
                if name in self.loads(target):
                    out.append(f"{module.path.relative_to(self.root.parent)}:{line} imports {target} inside a "
                               f"function, and {target} imports {name} back")
        return out


def test_no_import_inside_a_function_hides_a_cycle() -> None:
    assert ImportGraph(PROBER).hidden_cycles() == []


def test_the_check_finds_a_hidden_cycle_and_only_that(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "h").mkdir()
    files = {
        "__init__.py": "",
        "a.py": "from pkg.b import helper\n\n\ndef render():\n    return helper()\n",
        # b → a only inside a function, a → b at the top: a hidden cycle
        "b.py": "def helper():\n    from pkg import a\n    return a\n",
        # c → a inside a function, nothing imports c: a lazy import, no cycle
        "c.py": "def lazy():\n    from . import a\n    return a\n",
        # d → e inside a function; e → d only for the type checker: no cycle at run time
        "d.py": "def lazy():\n    import pkg.e\n    return pkg.e\n",
        "e.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import d\n",
        # the package h lazily imports its module h.i, which loads (but needs nothing of) h: no cycle
        "h/__init__.py": "def lazy():\n    from pkg.h.i import thing\n    return thing\n",
        "h/i.py": "from pkg.h.j import thing\n",
        "h/j.py": "thing = 1\n",
        # sub.f → sub.g inside a function; g needs the package sub, whose __init__ imports f
        "sub/__init__.py": "from pkg.sub.f import lazy\n",
        "sub/f.py": "def lazy():\n    from .g import thing\n    return thing\n",
        "sub/g.py": "from pkg.sub import lazy\nthing = lazy\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    assert ImportGraph(package).hidden_cycles() == [
        "pkg/b.py:2 imports pkg.a inside a function, and pkg.a imports pkg.b back",
        "pkg/sub/f.py:2 imports pkg.sub.g inside a function, and pkg.sub.g imports pkg.sub.f back",
    ]
