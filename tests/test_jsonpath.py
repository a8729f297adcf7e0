"""Compiled JSON paths (simple paths as direct lookups) give what JMESPath gives."""

from __future__ import annotations

import jmespath
import pytest

from prober.journey.jsonpath import SimplePath, compile_path

DOCUMENTS = [
    {"a": {"b": [{"c": 1}, {"c": None}, {"c": [1, 2]}]}, "x": 0, "s": "text", "n": None, "e": [], "o": {}},
    {"accounts": [{"resourceId": "ACC-1", "balances": {"amount": "12.50"}}], "token_type": "Bearer"},
    {"a": [[1, 2], [3]], "b": {"c": {"d": {"e": False}}}, "0": "zero", "with space": 1},
    {"a": "not an object", "b": 5, "c": True},
    [{"a": 1}, {"a": 2}],
    [[0, 1], "x"],
    "a string",
    42,
    None,
    True,
    {},
    [],
]

PATHS = [
    "a", "x", "s", "n", "e", "o", "missing",
    "a.b", "a.b[0]", "a.b[0].c", "a.b[1].c", "a.b[2].c[1]", "a.b[-1]", "a.b[-1].c[-2]", "a.b[3]", "a.b[-4]",
    "a.b.c", "a[0]", "a[0][1]", "a[1][0]", "a[5][0]", "b.c.d.e", "b.c.x.e", "a.missing.deeper",
    "accounts[0].resourceId", "accounts[1].resourceId", "accounts[0].balances.amount", "token_type",
    "[0]", "[1].a", "[-1]", "[0][1]", "s[0]", "x.y", "n.y", "e[0]", "o.a",
    '"with space"', '"0"', "a.\"b\"[0]",
]

RICHER = ["a.b[*].c", "a.b[0:2]", "not_null(a.b, x)", "a.b[?c == `1`] | [0]", "a.b[].c", "{x: x}", "[a, x]", "@",
          "balances[?balanceType=='CLBD'] | [0].balanceAmount.amount"]


@pytest.mark.parametrize("path", PATHS)
def test_simple_paths_become_direct_lookups_equal_to_jmespath(path: str) -> None:
    compiled = compile_path(path)
    assert isinstance(compiled, SimplePath)
    reference = jmespath.compile(path)
    for document in DOCUMENTS:
        assert compiled.search(document) == reference.search(document), (path, document)
        assert type(compiled.search(document)) is type(reference.search(document)), (path, document)


@pytest.mark.parametrize("path", RICHER)
def test_richer_expressions_stay_with_jmespath(path: str) -> None:
    compiled = compile_path(path)
    assert not isinstance(compiled, SimplePath)
    for document in DOCUMENTS:
        assert compiled.search(document) == jmespath.search(path, document)


def test_invalid_paths_still_fail_at_compile() -> None:
    with pytest.raises(jmespath.exceptions.ParseError):
        compile_path("a.[")

