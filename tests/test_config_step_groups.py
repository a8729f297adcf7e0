"""Step groups (`[[sites.step_groups.NAME]]` + `{ include = "NAME" }`) and which steps
carry the idempotency key: expansion, located errors, and the headers a real server sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from prober.cli import run_once
from prober.config.errors import ConfigError
from prober.loading import load
from tests.fixtures.echo_bank import EchoBank

GROUP = """
[[sites]]
name = "bank"
base_url = "{url}"
[sites.secrets]
password = "pw"

[[sites.step_groups.token]]
name = "token"
method = "POST"
path = "/oauth/token"
form = {{ grant_type = "password", password = "{{{{ password }}}}" }}
extract = {{ token = {{ json = "access_token" }} }}
"""

TRANSFER = """
[[sites.checks]]
name = "transfer"
kind = "transfer"
steps = [
  {{ include = "{group}" }},
  {{ name = "create", method = "POST", path = "/ok", headers = {{ Authorization = "Bearer {{{{ token }}}}" }} }},
  {{ name = "status", path = "/ok" }},
]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bank.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(path, environ={})
    return [p.replace(str(path), "FILE") for p in info.value.problems]


def test_include_expands_in_place_for_every_including_check(tmp_path: Path) -> None:
    accounts = '\n[[sites.checks]]\nname = "accounts"\nkind = "accounts"\nsteps = [ { include = "token" }, ' \
               '{ name = "list", path = "/ok", headers = { Authorization = "Bearer {{ token }}" } } ]\n'
    loaded = load(write(tmp_path, GROUP.format(url="http://127.0.0.1:1") + TRANSFER.format(group="token") + accounts),
                  environ={})
    plans = {p.check: p for p in loaded.plans}
    assert [s.name for s in plans["transfer"].steps] == ["token", "create", "status"]
    assert [s.name for s in plans["accounts"].steps] == ["token", "list"]
    assert [s.index for s in plans["transfer"].steps] == [0, 1, 2]
    steps = loaded.config.sites[0].checks[0].steps
    assert [getattr(s, "group", None) for s in steps] == ["token", None, None]


def test_unknown_group_names_the_group_and_the_including_step(tmp_path: Path) -> None:
    found = problems(tmp_path, GROUP.format(url="http://127.0.0.1:1") + TRANSFER.format(group="tokn"))
    assert found == [
        "FILE: sites[bank]: checks[transfer].steps[0].include: no step group 'tokn' in this site (defined: token)"
    ]


def test_invalid_group_step_is_reported_once_at_the_group(tmp_path: Path) -> None:
    text = GROUP.replace('method = "POST"', 'methd = "POST"').format(url="http://127.0.0.1:1")
    found = problems(tmp_path, text + TRANSFER.format(group="token"))
    assert found == ["FILE: sites[bank].step_groups.token[token].methd: unknown key"]


def test_template_checks_work_across_the_expansion(tmp_path: Path) -> None:
    text = GROUP.replace("{{{{ password }}}}", "{{{{ pasword }}}}").format(url="http://127.0.0.1:1")
    found = problems(tmp_path, text + TRANSFER.format(group="token"))
    assert found == [
        "FILE: sites[bank].checks[transfer].steps[token] (from step_groups.token).form: uses {{ pasword }}, "
        "which is not a site var or secret nor extracted by an earlier step"
    ]
    # A value extracted only by the group is unknown to a check that does not include it.
    alone = TRANSFER.format(group="token").replace('{ include = "token" },', "")
    found = problems(tmp_path, GROUP.format(url="http://127.0.0.1:1") + alone)
    assert found == [
        "FILE: sites[bank].checks[transfer].steps[create].headers: uses {{ token }}, "
        "which is not a site var or secret nor extracted by an earlier step"
    ]


def test_include_with_other_keys_is_refused(tmp_path: Path) -> None:
    text = TRANSFER.format(group="token").replace('{ include = "token" }', '{ include = "token", name = "x" }')
    found = problems(tmp_path, GROUP.format(url="http://127.0.0.1:1") + text)
    assert found == ['FILE: sites[bank].checks[transfer].steps[x].name: name does not go with include: '
                     '{ include = "NAME" } has no other key (the steps come from the step group)']


def test_idempotency_rule_in_plans(tmp_path: Path) -> None:
    text = GROUP.format(url="http://127.0.0.1:1") + TRANSFER.format(group="token") + """
[[sites.checks]]
name = "cards"
kind = "cards"
steps = [
  { name = "login", method = "POST", path = "/ok", json = { user = "a" }, idempotency_key = false },
  { name = "freeze", method = "POST", path = "/ok" },
]
[[sites.checks]]
name = "quote"
kind = "accounts"
steps = [ { name = "quote", method = "POST", path = "/ok", idempotency_key = true } ]
"""
    plans = {p.check: p for p in load(write(tmp_path, text), environ={}).plans}
    keyed = {c: [s.name for s in p.steps if s.idempotency_header] for c, p in plans.items()}
    assert keyed == {"transfer": ["create"], "cards": ["freeze"], "quote": ["quote"]}


async def test_token_post_of_a_mutating_check_carries_no_idempotency_key(tmp_path: Path) -> None:
    async with EchoBank() as bank:
        path = write(tmp_path, GROUP.format(url=bank.url) + TRANSFER.format(group="token"))
        [result] = await run_once(load(path, environ={}).plans)
        assert result.outcome.value == "ok", result.error
        token, create, status = bank.requests
    assert (token.path, create.method, status.method) == ("/oauth/token", "POST", "GET")
    lowered = [{k.lower() for k in r.headers} for r in (token, create, status)]
    assert ["idempotency-key" in h for h in lowered] == [False, True, False]
