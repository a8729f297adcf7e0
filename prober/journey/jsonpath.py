"""JMESPath expressions for assertions and extraction, with simple paths as direct lookups.

Most expressions in a journey are plain paths: ``access_token``,
``accounts[0].resourceId``, ``balances[0].balanceAmount.amount``. JMESPath's
interpreter walks its syntax tree for each of them on every response; :func:`compile_path`
turns such a path, once at load, into a list of keys and indexes applied directly.
Semantics stay JMESPath's: a missing key, an index out of range, a key asked of
something that is not an object or an index of something that is not an array give
``None``, never an exception; negative indexes count from the end. Anything richer
(filters, projections, slices, functions, pipes) is left to JMESPath itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import jmespath

if TYPE_CHECKING:
    from jmespath.visitor import _TreeNode  # a node of a parsed expression, as the stubs type it

__all__ = ["JsonPath", "SimplePath", "compile_path"]


class JsonPath(Protocol):
    """A compiled expression: ``search(document)`` gives the value or ``None``."""

    def search(self, value: Any) -> Any: ...


class SimplePath:
    """A path of object keys (``str``) and array indexes (``int``), e.g. ``a.b[0].c``."""

    __slots__ = ("expression", "steps")

    def __init__(self, expression: str, steps: tuple[str | int, ...]) -> None:
        self.expression = expression
        self.steps = steps

    def search(self, value: Any) -> Any:
        for step in self.steps:
            if step.__class__ is str:
                if not isinstance(value, dict):
                    return None
                value = value.get(step)
            else:
                if not isinstance(value, list):
                    return None
                try:
                    value = value[step]  # type: ignore[index]  # an int: `__class__ is` does not narrow
                except IndexError:
                    return None
        return value

    def holds_null(self, value: Any) -> bool:
        """Whether the path leads to a JSON null that is there (``search`` gives
        ``None`` for an absent value too)."""
        if not self.steps:
            return value is None
        *parents, last = self.steps
        container = SimplePath(self.expression, tuple(parents)).search(value)
        if isinstance(last, str):
            return isinstance(container, dict) and last in container and container[last] is None
        return isinstance(container, list) and -len(container) <= last < len(container) and container[last] is None

    def __repr__(self) -> str:
        return f"SimplePath({self.expression!r})"


def compile_path(expression: str) -> JsonPath:
    """Compile ``expression`` (raises ``jmespath.exceptions.ParseError`` when invalid)."""
    parsed = jmespath.compile(expression)
    steps = _simple_steps(parsed.parsed)
    return parsed if steps is None or not steps else SimplePath(expression, tuple(steps))


def _simple_steps(node: _TreeNode) -> list[str | int] | None:
    """The keys and indexes of a plain path's syntax tree; ``None`` for anything else."""
    kind = node.get("type")
    if kind == "field":
        return [node["value"]]
    if kind == "identity":
        return []
    if kind == "index":
        return [node["value"]] if isinstance(node.get("value"), int) else None
    if kind in ("subexpression", "index_expression"):
        # JMESPath applies the children in order, each to the previous one's result.
        steps: list[str | int] = []
        for child in node["children"]:
            sub = _simple_steps(child)
            if sub is None:
                return None
            steps += sub
        return steps
    return None
