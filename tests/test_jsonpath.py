"""Compiled JSON paths (simple paths as direct lookups) give what JMESPath gives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jmespath
import pytest

from prober.journey.jsonpath import Compiled, SimplePath, compile_path

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



BANKING = [
    {"balances": [{"balanceType": "CLBD", "balanceAmount": {"amount": "1523.45", "currency": "EUR"}},
                  {"balanceType": "XPCD", "balanceAmount": {"amount": "0", "currency": "EUR"}},
                  {"balanceType": "ITAV", "balanceAmount": None}]},
    {"accounts": [{"resourceId": "A", "currency": "EUR", "status": "enabled", "cashAccountType": "CACC", "n": 2},
                  {"resourceId": "B", "currency": "USD", "status": "blocked", "n": 0.5},
                  {"resourceId": "C", "currency": "EUR", "status": "enabled", "cashAccountType": "CARD", "n": "3"},
                  "not an object", None, 7]},
    {"accounts": {"A": {"currency": "EUR"}, "B": {"currency": "USD"}}, "balances": "text"},
]

COMPILED = [
    "balances[?balanceType=='CLBD'].balanceAmount.amount | [0]",
    "balances[?balanceType=='XPCD'] | [0].balanceAmount.currency",
    "balances[?balanceAmount].balanceType", "balances[?!balanceAmount].balanceType",
    "accounts[?currency=='EUR'] | length(@)",
    "accounts[?status=='enabled' && cashAccountType=='CACC'].resourceId | [0]",
    "accounts[?status=='blocked' || currency=='EUR'].resourceId",
    "accounts[?currency!='EUR'].resourceId", "accounts[?n > `1`].resourceId", "accounts[?n <= `0.5`].n",
    "accounts[?n > 'a'].n", "accounts[?`0`].resourceId", "accounts[?!`0`]", "accounts[?`[]`]",
    "accounts[*].resourceId", "accounts[*].currency | [1]", "accounts.*.currency", "accounts[].resourceId",
    "accounts[*].[resourceId]", "accounts[].n[]", "length(accounts)", "keys(accounts)", "max_by(accounts, &n)",
    "sort_by(accounts[?n != null && type(n) == 'number'], &n)[0].resourceId", "accounts[0:2].resourceId",
    "accounts[?contains(resourceId, 'A')]", "not_null(missing, accounts[0].resourceId)", "@.accounts[0]",
    "{first: accounts[0].resourceId, count: length(accounts)}", "balances | [?balanceType=='CLBD']",
    "!accounts", "!`0`", "accounts || balances", "accounts && balances", "to_number(accounts[2].n) > `2`",
]


def _outcome(search: Callable[[Any], Any], document: Any) -> tuple[type, Any]:
    """The value found and its type, or the error raised (JMESPath's own, or the
    TypeError of an ordering between a string and a number) and its message."""
    try:
        found = search(document)
    except (jmespath.exceptions.JMESPathError, TypeError) as exc:
        return type(exc), str(exc)
    return type(found), found


@pytest.mark.parametrize("path", COMPILED)
def test_compiled_expressions_give_what_jmespath_gives(path: str) -> None:
    """Every richer expression is compiled once (no SimplePath), and gives the value of
    the same type as JMESPath's interpreter, or raises the same error, on every document."""
    compiled = compile_path(path)
    assert isinstance(compiled, Compiled)
    reference = jmespath.compile(path)
    for document in BANKING + DOCUMENTS:
        assert _outcome(compiled.search, document) == _outcome(reference.search, document), (path, document)
