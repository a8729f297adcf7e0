"""The shipped alert rules and Alertmanager route, checked by the tools that load them:
``promtool check rules`` and ``promtool test rules`` (deploy/prometheus/alerts_test.yml),
``amtool check-config`` and ``amtool config routes test``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
RULES = DEPLOY / "alerts.yml"
ROUTE = DEPLOY / "alertmanager.yml"


def tool(name: str, package: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} not found: install the Debian package {package!r} (scripts/test does)"
    return found


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=DEPLOY)


def test_promtool_checks_the_rules() -> None:
    done = run(tool("promtool", "prometheus"), "check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    done = run(tool("promtool", "prometheus"), "test", "rules", str(DEPLOY / "alerts_test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_unit_test_that_expects_it_to_fire() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"BankCapabilityDown", "BankCapabilityDegraded", "BankProberNotProbing", "BankProberWriterDropping",
            "BankCertificateExpiring"} <= alerts
    tests = yaml.safe_load((DEPLOY / "alerts_test.yml").read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert alerts == fired


def test_a_broken_rule_fails_promtool(tmp_path: Path) -> None:
    """The check is not a formality: a rule with a PromQL error is refused."""
    broken = tmp_path / "alerts.yml"
    broken.write_text(RULES.read_text().replace('max by (site, kind) (bank_prober_capability_state{state="outage"})',
                                                'max by (site, kind) (bank_prober_capability_state{state="outage"}', 1))
    done = run(tool("promtool", "prometheus"), "check", "rules", str(broken))
    assert done.returncode != 0


def test_amtool_checks_the_route_example() -> None:
    done = run(tool("amtool", "prometheus-alertmanager"), "check-config", str(ROUTE))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("labels", "receiver"), [
    ("alertname=BankCapabilityDown severity=critical site=examplebank kind=transfer", "bank-ops-pager"),
    ("alertname=BankCapabilityDegraded severity=warning site=examplebank kind=login", "bank-ops-chat"),
    ("alertname=BankCertificateExpiringSoon severity=critical site=examplebank certificate=qwac", "bank-ops-chat"),
    ("alertname=BankProberDown severity=critical instance=paris:9480", "prober-team-pager"),
    ("alertname=BankProberWriterDropping severity=critical instance=paris:9480", "prober-team-pager"),
    ("alertname=BankProberWriterFailing severity=warning instance=paris:9480", "prober-team-chat"),
])
def test_alerts_route_to_the_right_receiver(labels: str, receiver: str) -> None:
    done = run(tool("amtool", "prometheus-alertmanager"), "config", "routes", "test",
               f"--config.file={ROUTE}", *labels.split())
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == [receiver]
