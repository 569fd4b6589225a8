"""The Grafana dashboards and provisioning files: well-formed, consistent, every variable used."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.assets import DASHBOARDS, DEPLOY, load_yaml, panels

# The metric names cmscan exposes (exporters/prometheus.py, scanner/telemetry.py) and the
# one Prometheus adds; a dashboard that asks for anything else shows "No data".
KNOWN_METRICS = {
    "up",
    "cmscan_hosts",
    "cmscan_hosts_stale",
    "cmscan_hosts_due",
    "cmscan_rule_failures",
    "cmscan_product_installs",
    "cmscan_access_users",
    "cmscan_access_users_missing_codes",
    "cmscan_access_practices",
    "cmscan_credential_suspended",
    "cmscan_database_up",
    "cmscan_metrics_read_duration_seconds",
    "cmscan_scans_total",
    "cmscan_scan_duration_seconds_bucket",
    "cmscan_scans_in_flight",
    "cmscan_sweep_last_completed_timestamp_seconds",
    "cmscan_db_errors_total",
    "cmscan_results_held",
    "cmscan_build_info",
}
# Figures read from the database: every replica serves the same numbers.
DATABASE_METRICS = (
    "cmscan_hosts",
    "cmscan_hosts_stale",
    "cmscan_rule_failures",
    "cmscan_product_installs",
    "cmscan_access_users",
    "cmscan_access_users_missing_codes",
    "cmscan_access_practices",
)
GROUP_FILTERS = ('icb=~"$icb"', 'ccg=~"$ccg"', 'pcn=~"$pcn"', 'practice=~"$practice"')


def boards() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, panels.load_dashboard(path)) for path in DASHBOARDS]


@pytest.fixture(params=[p.name for p in DASHBOARDS])
def board(request: pytest.FixtureRequest) -> dict[str, Any]:
    return panels.load_dashboard(DEPLOY / "grafana" / "dashboards" / request.param)


def exprs(board: dict[str, Any]) -> list[str]:
    return [q.expr for panel in panels.iter_panels(board) for q in panels.panel_queries(panel)]


def test_the_two_dashboards_are_there_with_distinct_uids() -> None:
    found = {name: board["uid"] for name, board in boards()}
    assert found == {
        "cmscan-deployment.json": "cmscan-deployment",
        "cmscan-health.json": "cmscan-health",
    }


def test_panel_ids_are_unique(board: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in panels.iter_panels(board)]
    assert len(ids) == len(set(ids)), sorted(ids)


def test_every_panel_and_query_has_the_data_source_variable(board: dict[str, Any]) -> None:
    wanted = {"type": "prometheus", "uid": "${datasource}"}
    for panel in panels.iter_panels(board):
        assert panel.get("datasource") == wanted, panel["title"]
        for target in panel.get("targets", []):
            assert target.get("datasource") == wanted, (panel["title"], target)
    datasource = [v for v in panels.variables(board) if v["type"] == "datasource"]
    assert [v["query"] for v in datasource] == ["prometheus"]


def test_every_template_variable_is_used_and_every_used_one_is_defined(
    board: dict[str, Any],
) -> None:
    defined = {v["name"] for v in panels.variables(board)}
    used: set[str] = set()
    for panel in panels.iter_panels(board):
        used |= panels.referenced(json.dumps(panel.get("datasource", {})))
        used |= panels.referenced(panel.get("title", ""))
        used |= {panel["repeat"]} if panel.get("repeat") else set()
        for target in panel.get("targets", []):
            used |= panels.referenced(target.get("expr", ""))
    for variable in panels.variables(board):
        used |= panels.referenced(panels.variable_query(variable))
    builtin = {name for name in used if name.startswith("__")}
    assert defined - used == set(), "defined but never used"
    assert used - builtin - defined == set(), "used but not defined"
    assert builtin <= set(panels.BUILTIN_INTERVALS)


def test_query_variables_are_label_values_with_all_meaning_any(board: dict[str, Any]) -> None:
    for variable in panels.variables(board):
        if variable["type"] != "query":
            continue
        panels.parse_label_values(panels.variable_query(variable))
        # ".*" also matches a label that does not exist, so the dashboards work whichever
        # levels metrics.group_by includes.
        assert variable["includeAll"], variable["name"]
        assert variable["allValue"] == ".*", variable["name"]


def test_queries_ask_only_for_metrics_cmscan_exposes(board: dict[str, Any]) -> None:
    for expr in exprs(board):
        names = set(re.findall(r"\b(cmscan_\w+|up)\s*\{", expr))
        assert names, expr
        assert names <= KNOWN_METRICS, expr


def test_database_figures_are_filtered_by_every_group_and_counted_once() -> None:
    board = panels.load_dashboard(DEPLOY / "grafana" / "dashboards" / "cmscan-deployment.json")
    for expr in exprs(board):
        for selector in re.findall(r"(cmscan_\w+)\{([^}]*)\}", expr):
            name, matchers = selector
            assert name in DATABASE_METRICS, expr
            assert all(f in matchers for f in GROUP_FILTERS), expr
            # Replicas serve identical copies; one copy is kept before adding up.
            assert f"max without (instance, pod) ({name}{{{matchers}}})" in expr, expr


def test_panels_fit_the_grid_without_overlapping(board: dict[str, Any]) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] < grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, (panel["title"], taken.get((x, y)))
                taken[(x, y)] = panel["title"]


def test_every_panel_has_a_title_and_a_description(board: dict[str, Any]) -> None:
    for panel in panels.iter_panels(board):
        assert panel.get("title"), panel["id"]
        if panel["type"] != "row":
            assert panel.get("description"), panel["title"]


def test_the_provisioned_data_source_is_the_dashboards_default() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    sources = load_yaml(provisioning / "datasources" / "cmscan-prometheus.yaml")["datasources"]
    assert [(s["type"], s["uid"]) for s in sources] == [("prometheus", "cmscan-prometheus")]
    for _, board in boards():
        datasource = next(v for v in panels.variables(board) if v["type"] == "datasource")
        assert datasource["current"]["value"] == "cmscan-prometheus"


def test_the_dashboard_provider_loads_the_folder_compose_mounts() -> None:
    provider = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "cmscan.yaml")
    (only,) = provider["providers"]
    compose = load_yaml(DEPLOY / "compose.yaml")
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{only['options']['path']}:ro" in mounts
    environment = compose["services"]["grafana"]["environment"]
    home = environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).parent.as_posix() == only["options"]["path"]
    assert (DEPLOY / "grafana" / "dashboards" / Path(home).name).is_file()


def test_expanding_variables_follows_grafana() -> None:
    values = {"ccg": "(00K|15N)", "__rate_interval": "1m"}
    expr = 'rate(x{ccg=~"$ccg"}[$__rate_interval]) + y{ccg=~"${ccg}"}'
    assert panels.expand(expr, values) == 'rate(x{ccg=~"(00K|15N)"}[1m]) + y{ccg=~"(00K|15N)"}'
    with pytest.raises(KeyError, match="icb"):
        panels.expand('x{icb=~"$icb"}', values)
    assert panels.regex_value(["00K", "15N"]) == "(00K|15N)"
    assert panels.regex_value(["NHS Identity Agent (x86)"]) == r"NHS Identity Agent \\(x86\\)"
    assert panels.parse_label_values('label_values(m{a=~"$a"}, b)') == ('m{a=~"$a"}', "b")
    assert panels.parse_label_values("label_values(b)") == (None, "b")
