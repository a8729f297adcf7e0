"""Every kind of invalid configuration gives one exact, located message (and exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from prober.config.errors import ConfigError
from prober.loading import load

SITE = """
[[sites]]
name = "bank"
base_url = "http://127.0.0.1:8480"
{site_extra}
[[sites.checks]]
name = "login"
kind = "login"
{check_extra}
[[sites.checks.steps]]
name = "token"
method = "POST"
path = "/oauth/token"
{step_extra}
"""


def site(site_extra: str = "", check_extra: str = "", step_extra: str = "") -> str:
    return SITE.format(site_extra=site_extra, check_extra=check_extra, step_extra=step_extra)


def _window(lines: str) -> str:
    return f"\n[[incidents.maintenance]]\n{lines}\n"


# (id, file text, environment, expected first problem with the file path written as FILE)
INVALID: list[tuple[str, str | bytes, dict[str, str], str]] = [
    ("toml-syntax", 'x = "unterminated\n', {}, "FILE:1:18: invalid TOML: Illegal character '\\n'"),
    ("toml-duplicate-key", "[prober]\nlocation = 'a'\nlocation = 'b'\n", {},
     "FILE:3:15: invalid TOML: Cannot overwrite a value"),
    ("unknown-top-key", site() + "\n[probr]\nlocation = 'x'\n", {}, "FILE: probr: unknown key"),
    ("locations-without-influxdb", site() + "\n[incidents.locations]\nconfirm = 2\n", {},
     "FILE: <top>: incidents.locations: deciding across locations reads what every prober wrote to InfluxDB: "
     "add an [influxdb] section (or remove [incidents.locations])"),
    ("locations-confirm-zero", site() + "\n[incidents.locations]\nconfirm = 0\n", {},
     'FILE: incidents.locations.confirm: confirm must be between 1 and 100 locations, or "all" (got 0)'),
    ("locations-unknown-key", site() + "\n[incidents.locations]\nquorum = 2\n", {},
     "FILE: incidents.locations.quorum: unknown key"),
    ("maintenance-no-zone", site() + _window('start = "2026-03-01T22:00:00"\nend = "2026-03-02T02:00:00Z"'), {},
     "FILE: incidents.maintenance[0].start: time '2026-03-01T22:00:00' has no time zone: add Z (UTC) or an offset "
     "such as +01:00"),
    ("maintenance-toml-local-date-time",
     site() + _window('start = 2026-03-01T22:00:00\nend = 2026-03-02T02:00:00Z'), {},
     "FILE: incidents.maintenance[0].start: time '2026-03-01T22:00:00' has no time zone: add Z (UTC) or an offset "
     "such as +01:00"),
    ("maintenance-not-a-time", site() + _window('start = "tonight"\nend = "2026-03-02T02:00:00Z"'), {},
     "FILE: incidents.maintenance[0].start: invalid time 'tonight': "
     "write an ISO 8601 time such as 2025-03-01T22:00:00Z"),
    ("maintenance-number", site() + _window('start = 1772402400\nend = "2026-03-02T02:00:00Z"'), {},
     'FILE: incidents.maintenance[0].start: expected a time such as "2025-03-01T22:00:00Z", got int 1772402400'),
    ("maintenance-end-first", site() + _window('start = "2026-03-02T02:00:00Z"\nend = "2026-03-02T01:00:00+00:00"'), {},
     "FILE: incidents.maintenance[0]: maintenance `end` must be after `start`"),
    ("maintenance-bad-time-of-day", site() + _window('weekdays = ["sun"]\nfrom = "1:00"\nto = "03:00"'), {},
     'FILE: incidents.maintenance[0].from: invalid time of day \'1:00\': write HH:MM (UTC), e.g. "22:30"'),
    ("maintenance-toml-time-with-seconds", site() + _window('weekdays = ["sun"]\nfrom = 01:00:30\nto = "03:00"'), {},
     'FILE: incidents.maintenance[0].from: invalid time of day \'01:00:30\': write HH:MM (UTC), e.g. "22:30"'),
    ("maintenance-time-of-day-number", site() + _window('weekdays = ["sun"]\nfrom = 1\nto = "03:00"'), {},
     'FILE: incidents.maintenance[0].from: expected a time of day such as "22:30", got int 1'),
    ("maintenance-weekly-without-to", site() + _window('weekdays = ["sun"]\nfrom = "01:00"'), {},
     "FILE: incidents.maintenance[0]: a weekly maintenance window needs `weekdays`, `from` and `to`"),
    ("unknown-step-key", site(step_extra='methd = "GET"'), {},
     "FILE: sites[bank].checks[login].steps[token].methd: unknown key"),
    ("wrong-type", site(check_extra='interval = 30'), {},
     "FILE: sites[bank].checks[login].interval: expected a duration string such as \"30s\", got int 30"),
    ("bad-duration", site(check_extra='interval = "5 parsecs"'), {},
     "FILE: sites[bank].checks[login].interval: invalid duration '5 parsecs' "
     "(write e.g. \"30s\", \"500ms\", \"1m30s\")"),
    ("bad-max-body", site(site_extra='max_body = "ten megabytes"'), {},
     "FILE: sites[bank].max_body: invalid size 'ten megabytes' (write e.g. \"512KiB\", \"10MiB\", \"1GiB\")"),
    ("max-body-number", site(step_extra="max_body = 10485760"), {},
     "FILE: sites[bank].checks[login].steps[token].max_body: "
     "expected a size string such as \"10MiB\", got int 10485760"),
    ("max-body-zero", site(step_extra='max_body = "0KiB"'), {},
     "FILE: sites[bank].checks[login].steps[token].max_body: size '0KiB' must be greater than zero"),
    ("max-body-over-1GiB", site(site_extra='max_body = "2GiB"'), {},
     "FILE: sites[bank].max_body: size '2GiB' is over 1GiB"),
    ("tag-schema-name", site(check_extra='tags = { outcome = "x" }'), {},
     "FILE: sites[bank].checks[login].tags: tag name 'outcome' is one of the schema's own tags "
     "(check, instance, kind, location, outcome, site, state, step)"),
    ("tag-bad-name", site(check_extra='tags = { "Merchant-Country" = "US" }'), {},
     "FILE: sites[bank].checks[login].tags: invalid tag name 'Merchant-Country': "
     "use 1-32 lowercase letters, digits or '_', starting with a letter"),
    ("tag-bad-value", site(check_extra='tags = { merchant_country = "U S" }'), {},
     "FILE: sites[bank].checks[login].tags: invalid value for tag 'merchant_country': "
     "use 1-63 letters, digits, '_', '-' or '.', starting with a letter or digit"),
    ("too-many-tags", site(check_extra='tags = { a = "1", b = "2", c = "3", d = "4", e = "5" }'), {},
     "FILE: sites[bank].checks[login].tags: at most 4 tags per check, got 5"),
    ("timeout-over-interval", site(check_extra='interval = "10s"\ntimeout = "20s"'), {},
     "FILE: sites[bank].checks[login]: timeout (20s) is longer than interval (10s)"),
    ("max-duration-over-timeout", site(check_extra='timeout = "10s"\nmax_duration = "12s"'), {},
     "FILE: sites[bank].checks[login]: max_duration (12s) is longer than timeout (10s)"),
    ("bad-url", site().replace("http://127.0.0.1:8480", "ftp://bank"), {},
     "FILE: sites[bank].base_url: invalid URL 'ftp://bank': expected http:// or https:// followed by a host"),
    ("bad-kind", site().replace('kind = "login"', 'kind = "mortgage"'), {},
     "FILE: sites[bank].checks[login].kind: "
     "Input should be 'login', 'accounts', 'transfer', 'cards', 'payments' or 'custom'"),
    ("missing-field", site().replace('kind = "login"\n', ""), {},
     "FILE: sites[bank].checks[login].kind: missing required field"),
    ("missing-steps",
     "[[sites]]\nname = 'bank'\nbase_url = 'http://b'\n[[sites.checks]]\nname = 'c'\nkind = 'login'\n", {},
     "FILE: sites[bank].checks[c].steps: missing required field"),
    ("bad-status", site(step_extra="status = 700"), {},
     "FILE: sites[bank].checks[login].steps[token].status: invalid HTTP status 700 (expected 100-599)"),
    ("path-and-url", site(step_extra='url = "http://other"'), {},
     "FILE: sites[bank].checks[login].steps[token]: step 'token' needs exactly one of `path`, `url`, got 2"),
    ("bad-jmespath", site(step_extra='extract = { token = { json = "access_token[" } }'), {},
     "FILE: sites[bank].checks[login].steps[token].extract.token.json: invalid JSON path 'access_token[': "
     "incomplete expression"),
    ("bad-jmespath-token", site(step_extra='extract = { token = { json = "a..b" } }'), {},
     "FILE: sites[bank].checks[login].steps[token].extract.token.json: invalid JSON path 'a..b': Expecting: "
     "['quoted_identifier', 'unquoted_identifier', 'lbracket', 'lbrace'], got: dot at position 2"),
    ("bad-regex", site(step_extra='expect = [ { body = true, matches = "(" } ]'), {},
     "FILE: sites[bank].checks[login].steps[token].expect[0].matches: invalid regular expression '(': "
     "missing ), unterminated subpattern at position 0"),
    ("assertion-without-comparator", site(step_extra='expect = [ { json = "a" } ]'), {},
     "FILE: sites[bank].checks[login].steps[token].expect[0]: an assertion needs at least one of equals, "
     "not_equals, gt, ge, lt, le, matches, contains, exists, length, min_length"),
    ("poll-on-post", site(step_extra="poll = { attempts = 3 }"), {},
     "FILE: sites[bank].checks[login].steps[token]: step 'token': `poll` repeats the request, so it is only "
     "allowed on GET/HEAD/OPTIONS"),
    ("duplicate-site", site() + site(), {}, "FILE: sites[bank].name: duplicate site name 'bank'"),
    ("duplicate-check",
     site() + '[[sites.checks]]\nname = "login"\nkind = "login"\n[[sites.checks.steps]]\nname = "a"\npath = "/"\n',
     {}, "FILE: sites[bank].checks[login].name: duplicate check name 'login' in site 'bank'"),
    ("undefined-reference", site(step_extra='headers = { Authorization = "Bearer {{ token }}" }'), {},
     "FILE: sites[bank].checks[login].steps[token].headers: uses {{ token }}, which is not a site var or "
     "secret nor extracted by an earlier step"),
    ("template-syntax", site(step_extra='body = "{{ oops"'), {},
     "FILE: sites[bank].checks[login].steps[token].body: invalid template: unexpected end of template, "
     "expected 'end of print statement'."),
    ("missing-env", site().replace("http://127.0.0.1:8480", "${BANK_URL}"), {},
     "FILE: sites[bank].base_url: environment variable BANK_URL is not set and has no default"),
    ("unreadable-secret-file", site(site_extra='[sites.secrets]\npassword_file = "/nonexistent/pw"'), {},
     "FILE: sites[bank].secrets: cannot read secret file '/nonexistent/pw': No such file or directory"),
    ("invalid-name", site().replace('name = "bank"', 'name = "my bank"'), {},
     "FILE: sites[my bank].name: invalid name 'my bank': use 1-63 letters, digits, '_', '-' or '.', "
     "starting with a letter or digit"),
    ("tls-key-without-cert", site(site_extra='[sites.tls]\nkey_file = "/k.pem"'), {},
     "FILE: sites[bank].tls: `key_file` is set but `cert_file` is not"),
    ("vars-and-secrets-overlap", site(site_extra='vars = { user = "a" }\nsecrets = { user = "b" }'), {},
     "FILE: sites[bank]: 'user' is defined in both vars and secrets"),
    # Durations outside their documented range (types.DurationRange).
    ("interval-too-long", site(check_extra='interval = "100000000d"'), {},
     "FILE: sites[bank].checks[login].interval: interval '100000000d' is out of range: allowed 100ms to 7d"),
    ("interval-too-short", site(check_extra='interval = "0.0000001ms"'), {},
     "FILE: sites[bank].checks[login].interval: interval '0.0000001ms' is out of range: allowed 100ms to 7d"),
    ("check-timeout-too-short", site(check_extra='timeout = "0.0000001ms"'), {},
     "FILE: sites[bank].checks[login].timeout: timeout '0.0000001ms' is out of range: allowed 10ms to 1d"),
    ("site-timeout-too-long", site(site_extra='timeout = "2d"'), {},
     "FILE: sites[bank].timeout: timeout '2d' is out of range: allowed 10ms to 1d"),
    ("step-timeout-too-short", site(step_extra='timeout = "5ms"'), {},
     "FILE: sites[bank].checks[login].steps[token].timeout: timeout '5ms' is out of range: allowed 10ms to 1d"),
    ("duration-too-long", "[daemon]\ngrace_period = \"8d\"\n" + site(), {},
     "FILE: daemon.grace_period: duration '8d' is out of range: allowed 1ms to 7d"),
    ("duration-zero", site(step_extra='max_duration = "0s"'), {},
     "FILE: sites[bank].checks[login].steps[token].max_duration: duration '0s' is out of range: allowed 1ms to 7d"),
    # [influxdb]: each API version its own model, errors named without the union's tag
    # (the union's own bad inputs are in UNION_CASES below).
    ("influxdb-unknown-key", site() + '\n[influxdb]\nurl = "http://h"\norg = "o"\nbucket = "b"\nbukket = "b"\n', {},
     "FILE: influxdb.bukket: unknown key"),
    ("influxdb-missing-bucket", site() + '\n[influxdb]\nurl = "http://h"\norg = "o"\n', {},
     "FILE: influxdb.bucket: missing required field"),
    ("influxdb-missing-database", site() + '\n[influxdb]\nurl = "http://h"\napi = "v1"\n', {},
     "FILE: influxdb.database: missing required field"),
    ("influxdb-token-file-unreadable",
     site() + '\n[influxdb]\nurl = "http://h"\norg = "o"\nbucket = "b"\ntoken_file = "/nonexistent/t"\n', {},
     "FILE: influxdb: `token_file`: cannot read secret file '/nonexistent/t': No such file or directory"),
    # Nothing to probe.
    ("empty-file", "", {}, "FILE: nothing to probe: no [[sites]] defined"),
    ("only-settings", "[prober]\nlocation = 'paris'\n", {}, "FILE: nothing to probe: no [[sites]] defined"),
    ("every-check-disabled", site(check_extra="enabled = false"), {},
     "FILE: nothing to probe: every check is disabled (enabled = false)"),
    # Concurrency slots (prober.daemon.slots).
    ("site-max-concurrency-zero", site(site_extra="max_concurrency = 0"), {},
     "FILE: sites[bank].max_concurrency: Input should be greater than or equal to 1"),
    ("max-concurrency-below-sites", "[daemon]\nmax_concurrency = 1\n" + site()
     + site().replace('name = "bank"', 'name = "other"'), {},
     "FILE: daemon.max_concurrency: 1 is less than the 2 sites with enabled checks; each site needs a slot of "
     "its own (remove it to size it from the checks)"),
    # Encoding: the line and column of the first byte that is not UTF-8.
    ("not-utf8", b'[prober]\nlocation = "caf\xe9"\n', {}, "FILE:2:16: not UTF-8 text (byte 0xe9)"),
    ("not-utf8-after-multibyte", site().encode() + "# d\u00e9j\u00e0 ".encode() + b"\xff\n", {},
     "FILE:15:8: not UTF-8 text (byte 0xff)"),
]


def _influxdb(body: str) -> str:
    return site() + "\n[influxdb]\n" + body


def _notifier(body: str) -> str:
    return site() + "\n[[notifiers]]\n" + body


def _signing(body: str) -> str:
    return site(site_extra="[sites.signing]\n" + body)


def _oauth(body: str) -> str:
    return site(step_extra=f"oauth = {{ {body} }}").replace('method = "POST"\npath = "/oauth/token"\n', "")


NOTIFIER_TYPES = "(webhook, slack, teams, apprise)"
API_VERSIONS = "(v2, v1)"
PROFILES = "(berlin-group, stet, uk-open-banking, rfc9421)"
AUTH_METHODS = "(private_key_jwt, tls_client_auth, client_secret_post, client_secret_basic)"
STEP = "FILE: sites[bank].checks[login].steps[token]"

# Every tagged union of the configuration (prober.config.unions): (noun of the union, kind
# of bad input, id, file text, expected problem or problems, in full). Each union has a
# case of each kind in BAD_TAG_KINDS.
UNION_CASES = [
    ("a notifier type", "wrong tag", "notifier-unknown-type", _notifier('type = "email"\nurl = "https://h"\n'),
     f'FILE: notifiers[0].type: "email" is not a notifier type {NOTIFIER_TYPES}'),
    ("a notifier type", "wrong tag", "notifier-type-case", _notifier('name = "ops"\ntype = "Slack"\nurl = "https://h"\n'),
     f'FILE: notifiers[ops].type: "Slack" is not a notifier type {NOTIFIER_TYPES}'),
    ("a notifier type", "missing tag", "notifier-without-type", _notifier('url = "https://h"\n'),
     "FILE: notifiers[0].type: missing required field"),
    ("a notifier type", "tag of wrong type", "notifier-type-number", _notifier('type = 3\nurl = "https://h"\n'),
     f"FILE: notifiers[0].type: 3 is not a notifier type {NOTIFIER_TYPES}"),
    ("a notifier type", "tag of wrong type", "notifier-type-array", _notifier('type = ["slack"]\nurl = "https://h"\n'),
     f'FILE: notifiers[0].type: ["slack"] is not a notifier type {NOTIFIER_TYPES}'),
    ("a notifier type", "key of another member", "notifier-apprise-key-in-slack",
     _notifier('type = "slack"\nurl = "https://h"\nurls = ["mailto://ops@example.net"]\n'),
     'FILE: notifiers[0].urls: urls applies to type = "apprise" only, not to type = "slack"'),
    ("a notifier type", "unknown key", "notifier-unknown-key",
     _notifier('type = "slack"\nurl = "https://h"\nchanel = "x"\n'),
     "FILE: notifiers[0].chanel: unknown key"),
    ("a notifier type", "member's required key", "notifier-member-missing-key", _notifier('type = "apprise"\n'),
     "FILE: notifiers[0]: an apprise notifier needs exactly one of `urls`, `urls_file`"),
    ("a notifier type", "not a table", "notifier-not-a-table", 'notifiers = ["slack"]\n' + site(),
     "FILE: notifiers[0]: expected a table, got string"),

    ("an InfluxDB API version", "wrong tag", "influxdb-unknown-api", _influxdb('url = "http://h"\napi = "v3"\n'),
     f'FILE: influxdb.api: "v3" is not an InfluxDB API version {API_VERSIONS}'),
    ("an InfluxDB API version", "missing tag", "influxdb-v1-key-without-api",
     _influxdb('url = "http://h"\ndatabase = "d"\n'),
     ("FILE: influxdb.org: missing required field", "FILE: influxdb.bucket: missing required field",
      'FILE: influxdb.database: database applies to api = "v1" only, not to api = "v2" (the default)')),
    ("an InfluxDB API version", "tag of wrong type", "influxdb-api-number", _influxdb('url = "http://h"\napi = 1\n'),
     f"FILE: influxdb.api: 1 is not an InfluxDB API version {API_VERSIONS}"),
    ("an InfluxDB API version", "key of another member", "influxdb-v2-key-in-v1",
     _influxdb('url = "http://h"\napi = "v1"\ndatabase = "d"\ntoken = "t"\n'),
     'FILE: influxdb.token: token applies to api = "v2" only, not to api = "v1"'),
    ("an InfluxDB API version", "key of another member", "influxdb-v1-key-in-v2",
     _influxdb('url = "http://h"\napi = "v2"\norg = "o"\nbucket = "b"\ncreate_database = true\n'),
     'FILE: influxdb.create_database: create_database applies to api = "v1" only, not to api = "v2"'),
    ("an InfluxDB API version", "member's required key", "influxdb-v1-without-database",
     _influxdb('url = "http://h"\napi = "v1"\n'), "FILE: influxdb.database: missing required field"),
    ("an InfluxDB API version", "not a table", "influxdb-not-a-table", 'influxdb = "http://h"\n' + site(),
     "FILE: influxdb: expected a table, got string"),

    ("a signing profile", "wrong tag", "signing-unknown-profile", _signing('profile = "jws"\nkey_file = "/k"\n'),
     f'FILE: sites[bank].signing.profile: "jws" is not a signing profile {PROFILES}'),
    ("a signing profile", "missing tag", "signing-without-profile", _signing('key_file = "/k"\nkey_id = "k"\n'),
     "FILE: sites[bank].signing.profile: missing required field"),
    ("a signing profile", "tag of wrong type", "signing-profile-boolean", _signing('profile = true\nkey_file = "/k"\n'),
     f"FILE: sites[bank].signing.profile: true is not a signing profile {PROFILES}"),
    ("a signing profile", "key of another member", "signing-ob-key-in-stet",
     _signing('profile = "stet"\nkey_file = "/k"\nkey_id = "https://tpp/qseal"\nissuer = "org/ssa"\n'),
     'FILE: sites[bank].signing.issuer: issuer applies to profile = "uk-open-banking" only, not to profile = "stet"'),
    ("a signing profile", "key of another member", "signing-headers-in-ob",
     _signing('profile = "uk-open-banking"\nkey_file = "/k"\nkey_id = "kid"\nissuer = "org/ssa"\nheaders = ["date"]\n'),
     'FILE: sites[bank].signing.headers: headers applies to profile = "berlin-group" or "stet" or "rfc9421" only, '
     'not to profile = "uk-open-banking"'),
    ("a signing profile", "member's required key", "signing-ob-without-issuer",
     _signing('profile = "uk-open-banking"\nkey_file = "/k"\nkey_id = "kid"\n'),
     "FILE: sites[bank].signing.issuer: missing required field"),
    ("a signing profile", "not a table", "signing-step-not-a-table", site(step_extra='signing = "stet"'),
     f"{STEP}.signing: expected a table, got string"),

    ("a client authentication method", "wrong tag", "oauth-unknown-auth",
     _oauth('token_url = "https://t", client_id = "c", auth = "mtls"'),
     f'{STEP}.oauth.auth: "mtls" is not a client authentication method {AUTH_METHODS}'),
    ("a client authentication method", "missing tag", "oauth-secret-without-auth",
     _oauth('token_url = "https://t", client_id = "c", client_secret = "{{ secret }}"'),
     (f"{STEP}.oauth.key_file: missing required field",
      f'{STEP}.oauth.client_secret: client_secret applies to auth = "client_secret_post" or "client_secret_basic" '
      'only, not to auth = "private_key_jwt" (the default)')),
    ("a client authentication method", "tag of wrong type", "oauth-auth-number",
     _oauth('token_url = "https://t", client_id = "c", auth = 2'),
     f"{STEP}.oauth.auth: 2 is not a client authentication method {AUTH_METHODS}"),
    ("a client authentication method", "key of another member", "oauth-jwt-key-in-mtls",
     _oauth('token_url = "https://t", client_id = "c", auth = "tls_client_auth", key_file = "/k"'),
     f'{STEP}.oauth.key_file: key_file applies to auth = "private_key_jwt" only, not to auth = "tls_client_auth"'),
    ("a client authentication method", "member's required key", "oauth-secret-post-without-secret",
     _oauth('token_url = "https://t", client_id = "c", auth = "client_secret_post"'),
     f"{STEP}.oauth.client_secret: missing required field"),
    ("a client authentication method", "not a table", "oauth-not-a-table",
     site(step_extra='oauth = "client_credentials"'),
     f"{STEP}.oauth: expected a table, got string"),
]

# A check's steps: a step, or { include = "NAME" } (the key `include` picks it).
TOKEN_STEP = '[[sites.checks.steps]]\nname = "token"\nmethod = "POST"\npath = "/oauth/token"\n'
STEP_OR_INCLUDE_CASES = [
    ("include-with-step-key", site(step_extra='include = "token"').replace('name = "token"\n', ""),
     tuple(f'FILE: sites[bank].checks[login].steps[0].{key}: {key} does not go with include: {{ include = "NAME" }} '
           "has no other key (the steps come from the step group)" for key in ("method", "path"))),
    ("include-number", site().replace(TOKEN_STEP, "steps = [ { include = 3 } ]\n"),
     "FILE: sites[bank].checks[login].steps[0].include: Input should be a valid string"),
    ("step-not-a-table", site().replace(TOKEN_STEP, 'steps = [ "token" ]\n'),
     "FILE: sites[bank].checks[login].steps[0]: expected a table, got string"),
]

BAD_TAG_KINDS = {"wrong tag", "missing tag", "tag of wrong type", "key of another member", "not a table"}


def write(path: Path, text: str | bytes) -> None:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


@pytest.mark.parametrize(("text", "env", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_config_exact_message(tmp_path: Path, text: str | bytes, env: dict[str, str], expected: str) -> None:
    path = tmp_path / "bank.toml"
    write(path, text)
    with pytest.raises(ConfigError) as caught:
        load(path, environ=env)
    assert caught.value.problems[0].replace(str(path), "FILE") == expected



@pytest.mark.parametrize(("text", "expected"), [c[3:] for c in UNION_CASES] + [c[1:] for c in STEP_OR_INCLUDE_CASES],
                         ids=[c[2] for c in UNION_CASES] + [c[0] for c in STEP_OR_INCLUDE_CASES])
def test_union_bad_input_exact_message(tmp_path: Path, text: str, expected: str | tuple[str, ...]) -> None:
    path = tmp_path / "bank.toml"
    write(path, text)
    with pytest.raises(ConfigError) as caught:
        load(path, environ={})
    problems = [problem.replace(str(path), "FILE") for problem in caught.value.problems]
    assert problems == ([expected] if isinstance(expected, str) else list(expected))


def test_every_union_has_a_case_of_each_bad_input() -> None:
    """A union added to the configuration gets its messages from prober.config.unions,
    and its cases here: this fails until it has them."""
    from prober.config.loader import read  # noqa: F401 - builds every union of the configuration
    from prober.config.unions import UNIONS

    covered: dict[str, set[str]] = {}
    for noun, kind, *_ in UNION_CASES:
        covered.setdefault(noun, set()).add(kind)
    assert {union.noun for union in UNIONS} == set(covered)
    for noun, kinds in covered.items():
        assert BAD_TAG_KINDS <= kinds, f"{noun}: no case of {BAD_TAG_KINDS - kinds}"


def test_union_choices_come_from_the_table() -> None:
    from prober.config.loader import read  # noqa: F401 - builds every union of the configuration
    from prober.config.unions import UNIONS
    from prober.notify.providers import PROVIDERS

    [notifiers] = [union for union in UNIONS if union.noun == "a notifier type"]
    assert f"({notifiers.choices})" == NOTIFIER_TYPES
    assert list(notifiers.members.values()) == list(PROVIDERS)


def test_env_default_and_escape(tmp_path: Path) -> None:
    path = tmp_path / "bank.toml"
    path.write_text(site(site_extra='vars = { user = "${BANK_USER:-alice}", price = "$${X}" }')
                    .replace("http://127.0.0.1:8480", "${BANK_URL}"))
    loaded = load(path, environ={"BANK_URL": "http://10.1.2.3:9000"})
    s = loaded.config.sites[0]
    assert s.base_url == "http://10.1.2.3:9000"
    assert s.vars == {"user": "alice", "price": "${X}"}


def test_secret_file_is_read(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2-file\n")
    path = tmp_path / "bank.toml"
    path.write_text(site(site_extra=f'[sites.secrets]\npassword_file = "{secret}"'))
    loaded = load(path, environ={})
    assert loaded.plans[0].values["password"] == "hunter2-file"
    assert "hunter2-file" not in repr(loaded.config)


def test_directory_merges_sites_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "10-prober.toml").write_text("[prober]\nlocation = 'paris'\n")
    (tmp_path / "30-b.toml").write_text(site().replace('name = "bank"', 'name = "bank-b"'))
    (tmp_path / "20-a.toml").write_text(site().replace('name = "bank"', 'name = "bank-a"'))
    loaded = load(tmp_path, environ={})
    assert [s.name for s in loaded.config.sites] == ["bank-a", "bank-b"]
    assert {p.location for p in loaded.plans} == {"paris"}


def test_directory_errors_name_the_file_of_the_site(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(site())
    (tmp_path / "b.toml").write_text(site(check_extra='interval = "x"').replace('name = "bank"', 'name = "other"'))
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, environ={})
    assert caught.value.problems == [f"{tmp_path / 'b.toml'}: sites[other].checks[login].interval: "
                                     "invalid duration 'x' (write e.g. \"30s\", \"500ms\", \"1m30s\")"]


def test_section_defined_twice_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text("[prober]\nlocation = 'a'\n")
    (tmp_path / "b.toml").write_text("[prober]\nlocation = 'b'\n")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, environ={})
    assert caught.value.problems == [f"{tmp_path / 'b.toml'}: [prober] is already defined in {tmp_path / 'a.toml'}; "
                                     "define it in one file only"]


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bank.toml"
    path.write_text(site(check_extra='interval = "x"', step_extra="methd = 1"))
    with pytest.raises(ConfigError) as caught:
        load(path, environ={})
    assert len(caught.value.problems) == 2


@pytest.mark.parametrize("case", ["toml-syntax", "unknown-step-key", "missing-env", "interval-too-long",
                                  "empty-file", "not-utf8"])
def test_validate_command_exits_2_without_traceback(tmp_path: Path, case: str) -> None:
    text, env, expected = next(c[1:] for c in INVALID if c[0] == case)
    path = tmp_path / "bank.toml"
    write(path, text)
    proc = subprocess.run([sys.executable, "-m", "prober", "validate", "-c", str(path)],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **env}, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("config error: " + expected.replace("FILE", str(path)))
    assert "Traceback" not in proc.stderr


def test_shipped_examples_validate(tmp_path: Path) -> None:
    """Every example validates; the PSD2 ones once their key files exist (validation
    loads them), and without them they fail naming the field and the file."""
    from tests.signing_keys import make_key

    qseal, client = make_key(tmp_path, "qseal"), make_key(tmp_path, "client")
    keys = {"BG_QSEAL_KEY": qseal.key_file, "BG_QSEAL_CERT": qseal.certificate_file, "BG_CLIENT_KEY": client.key_file,
            "STET_QSEAL_KEY": qseal.key_file, "STET_CLIENT_KEY": client.key_file,
            "UKOB_SIGNING_KEY": qseal.key_file, "UKOB_CLIENT_KEY": client.key_file}
    env = {"PATH": "/usr/bin:/bin", **{name: str(value) for name, value in keys.items()}}
    for path in sorted(Path("config").glob("*.toml")):
        proc = subprocess.run([sys.executable, "-m", "prober", "validate", "-c", str(path)],
                              capture_output=True, text=True, timeout=60, env=env)
        assert proc.returncode == 0, f"{path}: {proc.stderr}"
    proc = subprocess.run([sys.executable, "-m", "prober", "validate", "-c", "config/berlin-group.toml"],
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert ("config/berlin-group.toml: sites[berlin-group-bank].signing.key_file: cannot read key file "
            "/etc/bank-prober/bg-qseal.key: no such file or directory") in proc.stderr


@pytest.mark.parametrize("command", ["validate", "check", "run"])
def test_nothing_to_probe_exits_2(tmp_path: Path, command: str) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("# every site was removed\n")
    proc = subprocess.run([sys.executable, "-m", "prober", command, "-c", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"config error: {path}: nothing to probe: no [[sites]] defined\n"
