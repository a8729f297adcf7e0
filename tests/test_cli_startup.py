"""A command imports what it needs and nothing more: `prober --help` lists the commands
without importing any of them, and `prober validate` never imports the HTTP client, the
notifiers' libraries, the crypto libraries (no key file in the example) or the daemon,
nor, for the example's plain CSS selectors and templates, the CSS parser, Beautiful Soup
and Jinja.

What the start costs is measured by benchmarks/cli_startup.py; this checks which
modules a command leaves out, in a fresh interpreter (the test process has imported
everything already).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

PROBE = """
import contextlib, io, json, sys
from prober.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
loader = sys.modules.get("pydantic.plugin._loader")
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules),
                  "plugin_scan": getattr(loader, "_plugins", None) is not None}))
"""


def imported_by(*args: str) -> tuple[int, str, set[str]]:
    """Exit code, output and top-level packages imported by ``prober ARGS`` in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=True)
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["plugin_scan"] is False, "pydantic looked for plugins in every installed package's metadata"
    modules = set(report["modules"])
    return report["code"], report["out"], modules | {name.split(".")[0] for name in modules}


HEAVY = {"aiohttp", "apprise", "apscheduler", "tenacity", "influxdb_client", "joserfc", "cryptography",
         "rich", "uvloop", "http_message_signatures"}
"""Libraries no command here needs."""


def test_help_imports_no_command_and_no_library() -> None:
    code, out, modules = imported_by("--help")
    assert code == 0 and "validate" in out and "report" in out
    assert modules & (HEAVY | {"pydantic", "jinja2", "jmespath", "asyncio"}) == set()
    assert {m for m in modules if m.startswith("prober.")} <= {"prober.cli", "prober.logs", "prober.timefmt"}


@pytest.mark.parametrize("command", ["validate", "check", "run", "report"])
def test_a_commands_help_imports_only_what_its_options_need(command: str) -> None:
    code, out, modules = imported_by(command, "--help")
    assert code == 0 and "--config" in out
    assert modules & HEAVY == set()
    assert not {m for m in modules if m.startswith(("prober.simbank", "prober.daemon.lifecycle", "prober.journey"))}


@pytest.mark.parametrize("command", ["demo", "bank"])
def test_demo_and_bank_help_list_the_scenarios_without_the_bank_server(command: str) -> None:
    """The scenarios' table is read without the server (aiohttp and the bank's routes)."""
    code, out, modules = imported_by(command, "--help")
    assert code == 0 and "scenarios (--scenario NAME):" in out and "zero-balances" in out
    assert modules & HEAVY == set()
    assert not {m for m in modules if m.startswith(("prober.simbank.server", "prober.simbank.guard"))}


def test_the_bank_package_still_gives_its_server_by_name() -> None:
    import prober.simbank as bank

    assert bank.BankServer.__module__ == "prober.simbank.server" and callable(bank.run_bank)
    assert bank.BankState.__module__ == "prober.simbank.state"
    with pytest.raises(AttributeError, match="no attribute 'Server'"):
        bank.Server  # noqa: B018 - the attribute access is the test


def test_validate_of_the_example_imports_no_client_notifier_crypto_or_daemon() -> None:
    code, out, modules = imported_by("validate", "-c", "config/simbank.toml")
    assert code == 0 and "valid" in out
    assert modules & HEAVY == set()
    assert not {m for m in modules if m.startswith(("prober.daemon", "prober.simbank", "prober.writer",
                                                    "prober.notify.dispatcher", "prober.journey.runner",
                                                    "prober.journey.browser.engine"))}
    # The example's selectors (#sign-in, td.balance…) are plain CSS: checked without a parser;
    # its templates are plain substitutions ({{ token }}, {{ uuid() }}): read without Jinja.
    assert modules & {"soupsieve", "bs4", "playwright", "jinja2"} == set()
    # No site of the example has its own CA or client certificate, nor a TLS listener.
    assert "ssl" not in modules


def test_validate_of_a_selector_beyond_plain_css_still_parses_it(tmp_path: Path) -> None:
    example = (REPO / "config" / "simbank.toml").read_text()
    assert 'selector = "td.balance"' in example
    path = tmp_path / "bank.toml"
    path.write_text(example.replace('selector = "td.balance"', 'selector = "table tr:nth-child(2) td.balance"'))
    code, out, modules = imported_by("validate", "-c", str(path))
    assert code == 0 and "valid" in out
    assert "soupsieve" in modules
