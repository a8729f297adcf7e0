"""Templates in step fields: ``{{ token }}``, ``{{ run.id }}``, ``{{ uuid() }}``.

Jinja2 with strict undefined values: a template that names a value nobody defined fails
at load (see :func:`referenced_names`) rather than sending ``""`` to a bank. Strings
without template syntax are kept as plain strings, so a journey of constant requests
renders nothing per run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import jinja2
import jinja2.meta
import jinja2.nodes

_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    cache_size=0,
)
_ENV.globals["uuid"] = lambda: str(uuid.uuid4())

TemplateError = jinja2.TemplateError
UndefinedValue = jinja2.UndefinedError

Renderer = Callable[[Mapping[str, Any]], Any]
"""Turns the run's values into the final value of a field."""


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def referenced_names(text: str) -> set[str]:
    """Top-level names a template string uses; raises ``TemplateError`` on bad syntax."""
    if not _is_template(text):
        return set()
    return set(jinja2.meta.find_undeclared_variables(_ENV.parse(text)))


def names_in(value: Any) -> set[str]:
    """Names used anywhere in a string, list or table of strings."""
    if isinstance(value, str):
        return referenced_names(value)
    if isinstance(value, Mapping):
        return set().union(*(names_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(names_in(v) for v in value)) if value else set()
    return set()


def _lookup(values: Mapping[str, Any], name: str, attr: str | None) -> str:
    try:
        found = values[name]
    except KeyError:
        raise UndefinedValue(f"'{name}' is undefined") from None
    if attr is not None:
        try:
            found = getattr(found, attr)
        except AttributeError:
            try:
                found = found[attr]
            except (KeyError, TypeError):
                raise UndefinedValue(f"'{name}' has no attribute '{attr}'") from None
    return str(found)


def _substitution(text: str) -> Renderer | None:
    """A fast renderer for the common case, text with ``{{ name }}`` or
    ``{{ name.attr }}`` and nothing else; ``None`` for anything richer (filters, calls,
    blocks), which Jinja renders. Same output, a fraction of the cost per run."""
    parts: list[str | tuple[str, str | None]] = []
    for node in _ENV.parse(text).body:
        if not isinstance(node, jinja2.nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, jinja2.nodes.TemplateData):
                parts.append(child.data)
            elif isinstance(child, jinja2.nodes.Name):
                parts.append((child.name, None))
            elif isinstance(child, jinja2.nodes.Getattr) and isinstance(child.node, jinja2.nodes.Name):
                parts.append((child.node.name, child.attr))
            else:
                return None
    frozen = tuple(parts)
    return lambda values: "".join(p if isinstance(p, str) else _lookup(values, *p) for p in frozen)


def compile_value(value: Any) -> Renderer:
    """Compile a field once; the returned function renders it for one run."""
    if isinstance(value, str):
        if not _is_template(value):
            return lambda _values, _v=value: _v
        fast = _substitution(value)
        if fast is not None:
            return fast
        render = _ENV.from_string(value).render
        return lambda values: render(values)
    if isinstance(value, Mapping):
        parts = {k: compile_value(v) for k, v in value.items()}
        if all(_is_constant(v) for v in value.values()):
            return lambda _values, _v=value: _v
        return lambda values: {k: r(values) for k, r in parts.items()}
    if isinstance(value, list):
        items = [compile_value(v) for v in value]
        if all(_is_constant(v) for v in value):
            return lambda _values, _v=value: _v
        return lambda values: [r(values) for r in items]
    return lambda _values, _v=value: _v


def _is_constant(value: Any) -> bool:
    return not names_in(value) and not (isinstance(value, str) and _is_template(value))
