"""The alert rules, their unit tests and the Prometheus config, checked by the real promtool."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "config" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def load(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load(ALERTS)["groups"] for rule in group["rules"] if "alert" in rule]


@pytest.mark.ops
def test_when_promtool_checks_the_rules_then_they_are_valid(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


@pytest.mark.ops
def test_when_promtool_runs_the_alert_unit_tests_then_they_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.ops
def test_when_promtool_checks_the_compose_config_then_it_is_valid(promtool: str) -> None:
    result = run(promtool, "check", "config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.ops
def test_when_an_alert_expectation_is_wrong_then_promtool_test_fails(
    promtool: str, tmp_path: Path
) -> None:
    # Guards the guard: promtool must really evaluate our rules, not pass vacuously.
    (tmp_path / "alerts.yml").write_text(ALERTS.read_text(encoding="utf-8"), encoding="utf-8")
    tests = load(ALERTS_TEST)
    healthy = tests["tests"][0]["alert_rule_test"][0]
    healthy["exp_alerts"] = [{"exp_labels": {"severity": "critical"}}]
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(tests), encoding="utf-8")
    result = run(promtool, "test", "rules", str(tmp_path / "alerts_test.yml"))
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def test_when_alerts_are_listed_then_each_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in load(ALERTS_TEST)["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested not firing"
    assert (firing | quiet) - names == set(), "tests for alerts that do not exist"


def test_when_alerts_are_listed_then_each_has_for_severity_annotations_and_a_runbook() -> None:
    runbook = (PROMETHEUS_DIR.parents[1] / "docs" / "operations.md").read_text(encoding="utf-8")
    headings = {
        line.lstrip("#").strip().lower() for line in runbook.splitlines() if line[:1] == "#"
    }
    for rule in alert_rules():
        name = rule["alert"]
        assert rule.get("for"), name
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        annotations = rule["annotations"]
        assert annotations["summary"], name
        assert annotations["description"], name
        assert annotations["runbook_url"] == f"docs/operations.md#{name.lower()}", name
        assert name.lower() in headings, f"{name}: no runbook section in docs/operations.md"
