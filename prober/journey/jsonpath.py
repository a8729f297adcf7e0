"""JMESPath expressions for assertions and extraction, with simple paths as direct lookups.

Most expressions in a journey are plain paths: ``access_token``,
``accounts[0].resourceId``, ``balances[0].balanceAmount.amount``. JMESPath's
interpreter walks its syntax tree for each of them on every response; :func:`compile_path`
turns such a path, once at load, into a list of keys and indexes applied directly.
Semantics stay JMESPath's: a missing key, an index out of range, a key asked of
something that is not an object or an index of something that is not an array give
``None``, never an exception; negative indexes count from the end. Anything richer
(filters, projections, functions, pipes…) is compiled once into nested Python functions,
one per node of JMESPath's own syntax tree, each doing what JMESPath's interpreter does
for that node (:class:`Compiled`): the interpreter dispatches on the node's type by name,
for every node of every search. Nodes without such a function (slices, multi-selects,
``&expression`` references) are handed to JMESPath's interpreter, which evaluates that
subtree as it always does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from numbers import Number
from typing import TYPE_CHECKING, Any, Protocol

import jmespath
from jmespath.functions import Functions
from jmespath.visitor import TreeInterpreter

if TYPE_CHECKING:
    from jmespath.visitor import _TreeNode  # a node of a parsed expression, as the stubs type it

__all__ = ["Compiled", "JsonPath", "SimplePath", "compile_path"]


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
    if steps is None or not steps:
        return Compiled(expression, _compile(parsed.parsed))
    return SimplePath(expression, tuple(steps))


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


Search = Callable[[Any], Any]
"""One compiled node: its value for the value it is applied to."""


class Compiled:
    """A JMESPath expression compiled into Python functions (see the module docstring)."""

    __slots__ = ("expression", "_search")

    def __init__(self, expression: str, search: Search) -> None:
        self.expression = expression
        self._search = search

    def search(self, value: Any) -> Any:
        return self._search(value)

    def __repr__(self) -> str:
        return f"Compiled({self.expression!r})"


_INTERPRETER = TreeInterpreter()
"""What ``jmespath.search`` runs (with default options): for the nodes compiled here without."""
_FUNCTIONS = Functions()
_COMPARE = TreeInterpreter.COMPARATOR_FUNC


def _compile(node: _TreeNode) -> Search:
    build = _BUILDERS.get(node["type"])
    if build is None:
        return partial(_INTERPRETER.visit, node)
    return build(node)


def _is_false(value: Any) -> bool:
    # JMESPath's falsehood (TreeInterpreter._is_false): 0 is true, empty containers are not.
    return value == "" or value == [] or value == {} or value is None or value is False


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, Number)


def _field(node: _TreeNode) -> Search:
    key = node["value"]

    def field(value: Any) -> Any:
        try:
            return value.get(key)
        except AttributeError:
            return None

    return field


def _chain(node: _TreeNode) -> Search:
    """subexpression, index_expression and pipe: each child applied to the previous one's value."""
    first, *rest = [_compile(child) for child in node["children"]]
    if len(rest) == 1:
        second = rest[0]
        return lambda value: second(first(value))

    def chain(value: Any) -> Any:
        value = first(value)
        for search in rest:
            value = search(value)
        return value

    return chain


def _index(node: _TreeNode) -> Search:
    position = node["value"]

    def index(value: Any) -> Any:
        if not isinstance(value, list):
            return None
        try:
            return value[position]
        except IndexError:
            return None

    return index


def _literal(node: _TreeNode) -> Search:
    constant = node["value"]
    return lambda _value: constant


def _comparator(node: _TreeNode) -> Search:
    op = node["value"]
    compare = _COMPARE[op]
    left, right = (_compile(child) for child in node["children"])
    if op in ("eq", "ne"):
        return lambda value: compare(left(value), right(value))

    def ordered(value: Any) -> Any:
        # Ordering is defined for numbers and strings only; anything else gives null.
        a, b = left(value), right(value)
        if not ((_is_number(a) or isinstance(a, str)) and (_is_number(b) or isinstance(b, str))):
            return None
        return compare(a, b)

    return ordered


def _and(node: _TreeNode) -> Search:
    left, right = (_compile(child) for child in node["children"])

    def both(value: Any) -> Any:
        matched = left(value)
        return matched if _is_false(matched) else right(value)

    return both


def _or(node: _TreeNode) -> Search:
    left, right = (_compile(child) for child in node["children"])

    def either(value: Any) -> Any:
        matched = left(value)
        return right(value) if _is_false(matched) else matched

    return either


def _not(node: _TreeNode) -> Search:
    inner = _compile(node["children"][0])

    def negated(value: Any) -> Any:
        result = inner(value)
        if _is_number(result) and result == 0:
            return False  # !0 is false: 0 is true in JMESPath
        return not result

    return negated


def _function(node: _TreeNode) -> Search:
    name = node["value"]
    args = [_compile(child) for child in node["children"]]
    return lambda value: _FUNCTIONS.call_function(name, [arg(value) for arg in args])


def _filter_projection(node: _TreeNode) -> Search:
    base, project, condition = (_compile(child) for child in node["children"])

    def filtered(value: Any) -> Any:
        items = base(value)
        if not isinstance(items, list):
            return None
        collected = []
        for item in items:
            if not _is_false(condition(item)) and (current := project(item)) is not None:
                collected.append(current)
        return collected

    return filtered


def _projection(node: _TreeNode) -> Search:
    base, project = (_compile(child) for child in node["children"])

    def projected(value: Any) -> Any:
        items = base(value)
        if not isinstance(items, list):
            return None
        return [current for item in items if (current := project(item)) is not None]

    return projected


def _value_projection(node: _TreeNode) -> Search:
    base, project = (_compile(child) for child in node["children"])

    def projected(value: Any) -> Any:
        try:
            items = base(value).values()
        except AttributeError:
            return None
        return [current for item in items if (current := project(item)) is not None]

    return projected


def _flatten(node: _TreeNode) -> Search:
    base = _compile(node["children"][0])

    def flattened(value: Any) -> Any:
        items = base(value)
        if not isinstance(items, list):
            return None
        merged: list[Any] = []
        for item in items:
            if isinstance(item, list):
                merged.extend(item)
            else:
                merged.append(item)
        return merged

    return flattened


def _itself(_node: _TreeNode) -> Search:
    return lambda value: value


_BUILDERS: dict[str, Callable[[_TreeNode], Search]] = {
    "field": _field,
    "subexpression": _chain,
    "index_expression": _chain,
    "pipe": _chain,
    "index": _index,
    "identity": _itself,
    "current": _itself,
    "literal": _literal,
    "comparator": _comparator,
    "and_expression": _and,
    "or_expression": _or,
    "not_expression": _not,
    "function_expression": _function,
    "filter_projection": _filter_projection,
    "projection": _projection,
    "value_projection": _value_projection,
    "flatten": _flatten,
}
"""The nodes compiled here, each as JMESPath's TreeInterpreter evaluates it."""
