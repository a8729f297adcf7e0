"""Templates in step fields: ``{{ token }}``, ``{{ run.id }}``, ``{{ uuid() }}``.

Jinja2 with strict undefined values: a template that names a value nobody defined fails
at load (see :func:`referenced_names`) rather than sending ``""`` to a bank. Strings
without template syntax are kept as plain strings, so a journey of constant requests
renders nothing per run. Templates made only of text and ``{{ name }}``,
``{{ name.attr }}`` or ``{{ uuid() }}`` (nearly all of them) are read without Jinja
(:func:`_plain_parts`): a configuration that has no richer template never imports it,
which keeps ``prober validate`` and every start quicker.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2.nodes


class TemplateError(Exception):
    """A template string that does not parse."""


class UndefinedValue(Exception):
    """A template used a value the run does not have."""


@functools.cache
def _environment() -> Any:
    """Jinja's environment, built at the first template richer than plain substitutions."""
    import jinja2

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        cache_size=0,
    )
    env.globals["uuid"] = fresh_uuid
    return env


def fresh_uuid() -> str:
    """A random (version 4) UUID as text: what ``str(uuid.uuid4())`` gives, without
    building a ``UUID`` object (a quarter of the cost, and ``{{ uuid() }}`` runs on
    every request that carries an ``X-Request-ID``)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


Renderer = Callable[[Mapping[str, Any]], Any]
"""Turns the run's values into the final value of a field."""


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


_SUBSTITUTION = re.compile(
    r"\{\{\s*(?:(?P<uuid>uuid\(\s*\))|(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\.(?P<attr>[A-Za-z_][A-Za-z0-9_]*))?)\s*\}\}"
)
_JINJA_WORDS = frozenset({
    "true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else",
    # Jinja's default globals (jinja2.defaults.DEFAULT_NAMESPACE) and ours: not values of the run
    "range", "dict", "lipsum", "cycler", "joiner", "namespace", "uuid",
})
"""Names Jinja reads as something other than a value of the run: left to Jinja."""

Part = tuple[str, str, str]
"""One piece of a plain template: ``("text", data, "")``, ``("name", name, "")``,
``("attr", name, attr)`` or ``("uuid", "", "")``."""


@functools.lru_cache(maxsize=4096)
def _plain_parts(text: str) -> tuple[Part, ...] | None:
    """The pieces of a template made only of text and ``{{ name }}``, ``{{ name.attr }}``
    or ``{{ uuid() }}``, read without Jinja (what Jinja's parser gives for them); None for
    anything else (filters, blocks, comments, whitespace control, literals), which Jinja reads."""
    parts: list[Part] = []
    at = 0
    for match in _SUBSTITUTION.finditer(text):
        if not _add_text(parts, text[at:match.start()]):
            return None
        name, attr = match["name"], match["attr"]
        if match["uuid"]:
            parts.append(("uuid", "", ""))
        elif name in _JINJA_WORDS:
            return None
        else:
            parts.append(("attr", name, attr) if attr else ("name", name, ""))
        at = match.end()
    return tuple(parts) if _add_text(parts, text[at:]) else None


def _add_text(parts: list[Part], data: str) -> bool:
    """Add literal text to ``parts``; False when it holds Jinja syntax after all."""
    if "{{" in data or "{%" in data or "{#" in data:
        return False
    if data:
        parts.append(("text", data, ""))
    return True


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> jinja2.nodes.Template:
    """The syntax tree of a template string, parsed once: loading a configuration asks
    about the same site-wide templates once per check (a tree nobody changes)."""
    import jinja2

    try:
        return _environment().parse(text)
    except jinja2.TemplateError as exc:
        raise TemplateError(str(exc)) from exc


def referenced_names(text: str) -> set[str]:
    """Top-level names a template string uses; raises ``TemplateError`` on bad syntax."""
    if not _is_template(text):
        return set()
    plain = _plain_parts(text)
    if plain is not None:
        return {name for kind, name, _ in plain if kind in ("name", "attr")}
    import jinja2.meta

    return set(jinja2.meta.find_undeclared_variables(_parse(text)))


def fresh_per_use(text: str) -> bool:
    """Whether a template string gives a new value each time it is rendered with the
    same values: it calls ``uuid()``. Raises ``TemplateError`` on bad syntax."""
    if not _is_template(text):
        return False
    plain = _plain_parts(text)
    if plain is not None:
        return any(kind == "uuid" for kind, _, _ in plain)
    import jinja2.nodes

    return any(isinstance(call.node, jinja2.nodes.Name) and call.node.name == "uuid"
               for call in _parse(text).find_all(jinja2.nodes.Call))


def names_in(value: Any) -> set[str]:
    """Names used anywhere in a string, list or table of strings."""
    if isinstance(value, str):
        return referenced_names(value)
    if isinstance(value, Mapping):
        return set().union(*(names_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(names_in(v) for v in value)) if value else set()
    return set()


def unknown_name_problems(fields: Mapping[str, Any], known: set[str], where: str) -> list[str]:
    """What is wrong with the templates of a step's ``fields`` (field name → its value):
    a template that does not parse, a name that is not in ``known`` (the site's vars and
    secrets, and what earlier steps extract). Each problem names ``where``.field."""
    problems = []
    for field, value in fields.items():
        if value is None:
            continue
        try:
            used = names_in(value)
        except TemplateError as exc:
            problems.append(f"{where}.{field}: invalid template: {exc}")
            continue
        problems.extend(
            f"{where}.{field}: uses {{{{ {name} }}}}, which is not a site var or secret "
            "nor extracted by an earlier step"
            for name in sorted(used - known)
        )
    return problems


def _renderer_of(kind: str, name: str, attr: str) -> Renderer:
    if kind == "text":
        return _constant(name)
    if kind == "name":
        return _name(name)
    if kind == "attr":
        return _attribute(name, attr)
    return _uuid


def _substitution(text: str) -> Renderer | None:
    """A fast renderer for the common case, text with ``{{ name }}``,
    ``{{ name.attr }}`` or ``{{ uuid() }}`` and nothing else; ``None`` for anything
    richer (filters, other calls, blocks), which Jinja renders. Same output, a fraction
    of the cost per run (a Jinja render of ``{{ uuid() }}`` alone costs ~15 µs)."""
    plain = _plain_parts(text)
    if plain is None:
        return None
    parts = [_renderer_of(*part) for part in plain]
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:  # "Bearer {{ token }}", "{{ run.id }}-"…
        first, second = parts
        return lambda values: first(values) + second(values)
    frozen = tuple(parts)
    return lambda values: "".join([part(values) for part in frozen])


def _uuid(_values: Mapping[str, Any]) -> str:
    return fresh_uuid()


def _name(name: str) -> Renderer:
    """The renderer of ``{{ name }}``: the value as text."""

    def lookup(values: Mapping[str, Any]) -> str:
        try:
            return str(values[name])
        except KeyError:
            raise UndefinedValue(f"'{name}' is undefined") from None

    return lookup


def _attribute(name: str, attr: str) -> Renderer:
    """The renderer of ``{{ name.attr }}``: an attribute, else an item, as Jinja looks it up."""

    def lookup(values: Mapping[str, Any]) -> str:
        try:
            found = values[name]
        except KeyError:
            raise UndefinedValue(f"'{name}' is undefined") from None
        try:
            return str(getattr(found, attr))
        except AttributeError:
            try:
                return str(found[attr])
            except (KeyError, TypeError):
                raise UndefinedValue(f"'{name}' has no attribute '{attr}'") from None

    return lookup


def compile_value(value: Any) -> Renderer:
    """Compile a field once; the returned function renders it for one run."""
    if isinstance(value, str):
        if not _is_template(value):
            return _constant(value)
        fast = _substitution(value)
        if fast is not None:
            return fast
        return _jinja_renderer(value)
    if isinstance(value, Mapping):
        parts = {k: compile_value(v) for k, v in value.items()}
        if all(_is_constant(v) for v in value.values()):
            return _constant(value)
        return lambda values: {k: r(values) for k, r in parts.items()}
    if isinstance(value, list):
        items = [compile_value(v) for v in value]
        if all(_is_constant(v) for v in value):
            return _constant(value)
        return lambda values: [r(values) for r in items]
    return _constant(value)


def _jinja_renderer(text: str) -> Renderer:
    """Jinja's renderer of ``text``; a value the run lacks raises :class:`UndefinedValue`."""
    import jinja2

    try:
        render = _environment().from_string(text).render
    except jinja2.TemplateError as exc:
        raise TemplateError(str(exc)) from exc

    def rendered(values: Mapping[str, Any]) -> Any:
        try:
            return render(values)
        except jinja2.UndefinedError as exc:
            raise UndefinedValue(str(exc)) from exc

    return rendered


def _constant(value: Any) -> Renderer:
    """A renderer that gives ``value`` itself, whatever the run's values."""
    return lambda _values: value


def _is_constant(value: Any) -> bool:
    return not names_in(value) and not (isinstance(value, str) and _is_template(value))
