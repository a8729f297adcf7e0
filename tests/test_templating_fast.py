"""Fast templates give what Jinja gives, with ``{{ uuid() }}`` and lazy run values."""

from __future__ import annotations

import re
import time
import uuid
from types import SimpleNamespace

import pytest

from prober.journey.runner import RunInfo
from prober.journey.templating import (
    UndefinedValue,
    _environment,
    _plain_parts,
    compile_value,
    fresh_per_use,
    fresh_uuid,
    referenced_names,
)

UUID_V4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_fresh_uuid_is_a_random_version_4_uuid() -> None:
    seen = {fresh_uuid() for _ in range(2000)}
    assert len(seen) == 2000
    for text in list(seen)[:200]:
        assert UUID_V4.match(text), text
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def run_values() -> dict[str, object]:
    # RunInfo reads site, check and location of its plan: a namespace stands for it
    plan = SimpleNamespace(site="bank", check="accounts", location="paris-1")
    return {"token": "tok", "x": 5, "run": RunInfo(plan, 1_764_000_000_123_456_789)}  # type: ignore[arg-type]


@pytest.mark.parametrize("text", [
    "{{ uuid() }}", "req-{{ uuid() }}", "{{ uuid() }}/{{ run.id }}", "Bearer {{ token }} {{ uuid() }}",
    "{{ run.now }} {{ run.date }} {{ run.epoch_ms }} {{ run.site }} {{ run.check }} {{ run.location }}",
    "{{ run.uuid }}", "{{ x }}{{ uuid() }}{{ x }}",
])
def test_templates_with_uuid_and_run_values_render_as_jinja_does(text: str) -> None:
    values = run_values()
    fast = compile_value(text)(values)
    slow = _environment().from_string(text).render(values)
    # Every uuid() is fresh: compare with the UUIDs masked, then check they are UUIDs.
    mask = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    run_uuid = values["run"].uuid  # type: ignore[attr-defined]  # a RunInfo
    assert mask.sub("U", fast.replace(run_uuid, "R")) == mask.sub("U", slow.replace(run_uuid, "R"))
    assert fast.count("-4") >= text.count("uuid()")


def test_uuid_templates_take_the_fast_path() -> None:
    from prober.journey.templating import _substitution

    for text in ("{{ uuid() }}", "a-{{ uuid() }}-{{ token }}"):
        assert _substitution(text) is not None
    for text in ("{{ uuid(1) }}", "{{ uuid() | upper }}", "{{ other() }}"):
        assert _substitution(text) is None
    render = compile_value("{{ uuid() }}")
    assert render({}) != render({})


def test_undefined_names_fail_alike_next_to_uuid() -> None:
    with pytest.raises(UndefinedValue, match="'missing' is undefined"):
        compile_value("{{ uuid() }}-{{ missing }}")({})


def test_run_values_equal_the_values_computed_up_front() -> None:
    wall_ns = 1_764_000_000_999_999_999
    # a namespace stands for the plan, as in run_values()
    run = RunInfo(SimpleNamespace(site="s", check="c", location="l"), wall_ns)  # type: ignore[arg-type]
    moment = time.gmtime(wall_ns // 1_000_000_000)
    assert run.now == time.strftime("%Y-%m-%dT%H:%M:%SZ", moment) == "2025-11-24T16:00:00Z"
    assert run.date == "2025-11-24"
    assert run.epoch_ms == wall_ns // 1_000_000
    assert (run.site, run.check, run.location) == ("s", "c", "l")
    assert uuid.UUID(run.uuid).hex == run.id and uuid.UUID(run.uuid).version == 4
    assert RunInfo(SimpleNamespace(site="s", check="c", location="l"), wall_ns).id != run.id  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "fresh"), [
    ("{{ uuid() }}", True), ("req-{{ uuid() }}", True), ("{{ run.id }}-{{ uuid() }}", True),
    ("{{ uuid() | upper }}", True), ("{% if x %}{{ uuid() }}{% endif %}", True),
    ("{{ run.uuid }}", False), ("{{ run.id }}", False), ("Bearer {{ token }}", False), ("uuid()", False),
])
def test_templates_that_change_at_each_use_are_found(text: str, fresh: bool) -> None:
    """Headers like these are rendered again for each request sent (poll attempts, redirect hops)."""
    assert fresh_per_use(text) is fresh


PLAIN_OR_NOT = [
    "{{ x }}", "a {{ x }} b", "{{x}}", "{{\tx\n}}", "{{ run.id }}-{{ x }}", "{{ d.k }}{{ d.k }}", "{{ uuid() }}",
    "{{ uuid( ) }}x{{ token }}", "line\n{{ x }}\n", "{ {{ x }} }", "}} {{ x }}", "{{ x }} {# note #}",
    "{{- x }}", "{{ x -}} b", "{{ x | upper }}", "{% if x %}{{ x }}{% endif %}", "{{ 'a' }}", "{{ 1 }}",
    "{{ x.1 }}", "{{ x[0] }}", "{{ x.y.z }}", "{{ uuid }}", "{{ uuid(1) }}", "{{ range }}", "{{ true }}",
    "{{ None }}", "{{ not x }}", "{{ x.true }}", "{{ _private }}", "{{ loop }}", "{{ x }}{{", "{{ x }",
    "{% raw %}{{ x }}{% endraw %}", "{{ namespace }}", "{{ dict }}", "{{ lipsum }}", "{{ cycler }}",
    "{{ joiner }}", "{{ x }}{{ y }}{{ z }}",
]


@pytest.mark.parametrize("text", PLAIN_OR_NOT)
def test_templates_read_without_jinja_give_what_jinja_gives(text: str) -> None:
    """Names used, freshness and the rendered text are the same whichever path reads a template."""
    import jinja2
    import jinja2.meta
    import jinja2.nodes

    env = _environment()
    try:
        tree = env.parse(text)
    except jinja2.TemplateSyntaxError:
        assert _plain_parts(text) is None
        return
    if _plain_parts(text) is None:
        return  # Jinja's own path: the cases above that are not plain check that it is taken
    assert referenced_names(text) == set(jinja2.meta.find_undeclared_variables(tree))
    called = {call.node.name for call in tree.find_all(jinja2.nodes.Call) if isinstance(call.node, jinja2.nodes.Name)}
    assert fresh_per_use(text) is ("uuid" in called)
    values = {"x": "val", "y": None, "z": 7, "token": "t", "d": {"k": 3}, "run": type("Run", (), {"id": "R7"})()}
    mask = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    try:
        expected = mask.sub("U", env.from_string(text).render(values))
    except jinja2.UndefinedError as exc:
        # A missing name reads as Jinja words it; a missing attribute names the value it was looked up on
        message = re.escape(str(exc)) if "is undefined" in str(exc) else "has no attribute"
        with pytest.raises(UndefinedValue, match=message):
            compile_value(text)(values)
    else:
        assert mask.sub("U", compile_value(text)(values)) == expected


def test_only_plain_substitutions_are_read_without_jinja() -> None:
    plain = {"{{ x }}", "a {{ x }} b", "{{x}}", "{{\tx\n}}", "{{ run.id }}-{{ x }}", "{{ d.k }}{{ d.k }}",
             "{{ uuid() }}", "{{ uuid( ) }}x{{ token }}", "line\n{{ x }}\n", "{ {{ x }} }", "}} {{ x }}",
             "{{ x.true }}", "{{ _private }}", "{{ loop }}", "{{ x }}{{ y }}{{ z }}"}
    assert {text for text in PLAIN_OR_NOT if _plain_parts(text) is not None} == plain


def test_the_words_left_to_jinja_cover_its_default_globals() -> None:
    from jinja2.defaults import DEFAULT_NAMESPACE

    from prober.journey.templating import _JINJA_WORDS

    assert set(DEFAULT_NAMESPACE) | {"uuid", "true", "false", "none", "True", "False", "None"} <= _JINJA_WORDS
