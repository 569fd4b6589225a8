"""The Prometheus configuration and rules: promtool accepts them and every alert is tested."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.deploy.assets import DEPLOY, PROMETHEUS, RULE_FILES, alert_rules, load_yaml
from tests.support import need_executable

RUNBOOK = ("summary", "description", "what_to_check", "how_to_fix")
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    return need_executable("promtool", "prometheus (Debian package; promtool ships with it)")


def run(command: list[str], cwd: Path) -> str:
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_promtool_accepts_the_scrape_config(promtool: str) -> None:
    output = run([promtool, "check", "config", "prometheus.yml"], PROMETHEUS)
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in output


def test_promtool_accepts_the_compose_scrape_config(promtool: str, tmp_path: Path) -> None:
    """compose/prometheus.yml names the rules where compose mounts them; check it with
    the rules in the same place relative to a copy."""
    config = load_yaml(DEPLOY / "compose" / "prometheus.yml")
    rules = tmp_path / "rules"
    rules.mkdir()
    for path in RULE_FILES:
        (rules / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    mounted = [Path(p) for p in config["rule_files"]]
    assert {p.parent.as_posix() for p in mounted} == {"/etc/prometheus/rules"}
    assert sorted(p.name for p in mounted) == sorted(p.name for p in RULE_FILES)
    config["rule_files"] = [f"rules/{p.name}" for p in mounted]
    (tmp_path / "prometheus.yml").write_text(json.dumps(config), encoding="utf-8")
    run([promtool, "check", "config", "prometheus.yml"], tmp_path)


def test_promtool_accepts_the_rules(promtool: str) -> None:
    run([promtool, "check", "rules", *map(str, RULE_FILES)], PROMETHEUS)


def test_promtool_unit_tests_pass(promtool: str) -> None:
    assert UNIT_TESTS
    output = run([promtool, "test", "rules", *map(str, UNIT_TESTS)], PROMETHEUS / "tests")
    assert "FAILED" not in output


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_does_not() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        document = load_yaml(path)
        assert sorted(Path(f).name for f in document["rule_files"]) == sorted(
            p.name for p in RULE_FILES
        )
        for case in document["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts never seen firing"
    assert names - quiet == set(), "alerts never seen staying quiet"


def test_every_alert_reads_as_a_runbook() -> None:
    for rule in alert_rules():
        annotations = rule["annotations"]
        assert set(annotations) == set(RUNBOOK), rule["alert"]
        assert all(len(annotations[key]) > 20 for key in RUNBOOK), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["alert"].startswith("Cmscan"), rule["alert"]


def test_the_required_alerts_exist() -> None:
    expressions = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    assert {
        "CmscanComplianceRegression",
        "CmscanScannerDown",
        "CmscanNotScraped",
        "CmscanSweepOverdue",
        "CmscanCredentialSuspended",
        "CmscanUnreachableShareHigh",
        "CmscanDatabaseDown",
        "CmscanDatabaseErrors",
    } <= set(expressions)
    # The alerts and the scrape configuration agree on the job's name.
    jobs = [job["job_name"] for job in load_yaml(PROMETHEUS / "prometheus.yml")["scrape_configs"]]
    assert jobs == ["cmscan"]
    assert 'job="cmscan"' in expressions["CmscanScannerDown"]


def test_a_suspended_credential_says_how_to_resume_it() -> None:
    (rule,) = [r for r in alert_rules() if r["alert"] == "CmscanCredentialSuspended"]
    assert "cmscan credentials resume {{ $labels.profile }}" in rule["annotations"]["how_to_fix"]


def test_the_file_sd_example_is_in_prometheus_format_and_not_loaded_as_is() -> None:
    example = PROMETHEUS / "targets" / "cmscan.json.example"
    groups = json.loads(example.read_text(encoding="utf-8"))
    assert groups
    assert all(set(g) <= {"targets", "labels"} and g["targets"] for g in groups)
    (job,) = load_yaml(PROMETHEUS / "prometheus.yml")["scrape_configs"]
    patterns = [f for sd in job["file_sd_configs"] for f in sd["files"]]
    # The example's placeholder hosts would show up as down targets if it were loaded.
    assert not any(example.match(pattern) for pattern in patterns)
