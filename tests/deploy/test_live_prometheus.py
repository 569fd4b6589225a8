"""A real Prometheus, with the shipped scrape configuration and rules, scraping a real daemon
that sweeps a simulated fleet; every dashboard query and alert expression is evaluated through
its HTTP API and must be valid and return series.

Runs twice: with the default metrics.group_by (ccg only: the ICB, PCN and practice
variables have no values and stand for "All") and with every level, each variable then
set to a real value.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator.behaviour import Fault
from simulator.fleet import FleetOptions
from simulator.fleet_thread import FleetThread
from simulator.run_options import RunOptions
from tests.daemon.harness import DaemonProcess, daemons, import_fleet, wait_for, write_config
from tests.deploy.assets import (
    DASHBOARDS,
    PROMETHEUS,
    RULE_FILES,
    alert_rules,
    panels,
    recording_rules,
)
from tests.deploy.promql import operands
from tests.fleet import random_loopback_base
from tests.support import free_port, need_executable

pytestmark = pytest.mark.integration

SCRAPE_SECONDS = 1
# Grafana's interval variables as a dashboard showing the last minute would get them.
INTERVALS = {"__rate_interval": "10s", "__interval": "2s", "__range": "60s"}
ALL_LEVELS = ("icb", "ccg", "pcn", "practice")


@dataclass
class Stack:
    prometheus: Any  # deploy/panels/prometheus_api.Prometheus
    levels: tuple[str, ...]


def prometheus_config(target: str, directory: Path, *, own_port: int) -> Path:
    """The shipped prometheus.yml, templated to this test's daemon and directories, plus a
    job that is not cmscan's (Prometheus scraping itself), as a real Prometheus has."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"]["scrape_interval"] = f"{SCRAPE_SECONDS}s"
    config["global"]["evaluation_interval"] = f"{SCRAPE_SECONDS}s"
    assert {Path(p).name for p in config["rule_files"]} == {p.name for p in RULE_FILES}
    config["rule_files"] = [str(p) for p in RULE_FILES]
    (job,) = config["scrape_configs"]
    job["scrape_timeout"] = f"{SCRAPE_SECONDS}s"
    job["static_configs"] = [{"targets": [target]}]
    # file_sd stays on, reading an empty target list from this test's own directory.
    targets = directory / "targets"
    targets.mkdir()
    (targets / "cmscan.json").write_text("[]\n", encoding="utf-8")
    (sd,) = job["file_sd_configs"]
    sd["files"] = [str(targets / Path(f).name) for f in sd["files"]]
    config["scrape_configs"].append(
        {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{own_port}"]}]}
    )
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def start_fleet(directory: Path) -> FleetThread:
    """A small mixed fleet: some hosts switched off and one with a broken probe, so that
    unreachable and error statuses have hosts; no bad credentials, which would (rightly)
    make the lockout guard suspend the only profile."""
    options = RunOptions(
        fleet=FleetOptions(
            hosts=30,
            seed=7,
            rtt_ms=1.0,
            exec_ms=5.0,
            base_address=random_loopback_base(),
            transport="mixed",
            fault_mix={Fault.POWERED_OFF: 0.15, Fault.MALFORMED_OUTPUT: 0.05},
        ),
        out_dir=directory / "fleet",
        winrm_port=0,
        winrm_https_port=0,
        ssh_port=0,
    )
    return FleetThread(options).start()


@pytest.fixture(scope="module", params=[("ccg",), ALL_LEVELS], ids=["ccg-only", "all-levels"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    binary = need_executable("prometheus", "prometheus (Debian package)")
    levels: tuple[str, ...] = request.param
    directory = tmp_path_factory.mktemp("live")
    fleet = start_fleet(directory)
    try:
        database_url = f"sqlite:///{directory / 'cmscan.db'}"
        groups = ", ".join(f'"{level}"' for level in levels)
        config = write_config(
            fleet,
            directory,
            database_url=database_url,
            extra=f'\n[metrics]\ngroup_by = [{groups}]\ncache = "1s"\n',
        )
        asyncio.run(import_fleet(database_url, fleet, users=True))
        daemon = DaemonProcess(config, database_url=database_url, log=directory / "daemon.log")
        with daemons(daemon):
            wait_for(
                lambda: "listening on http://" in daemon.log or not daemon.alive(),
                timeout=60,
                what="the daemon to listen",
            )
            found = re.search(r"listening on http://(\S+?),", daemon.log)
            assert found, daemon.log
            port = free_port()
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={prometheus_config(found[1], directory, own_port=port)}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=(log := (directory / "prometheus.log").open("wb")),
                stderr=subprocess.STDOUT,
            )
            log.close()
            try:
                client = panels.Prometheus(f"http://127.0.0.1:{port}", timeout=10)
                wait_until_swept(client, process, directory)
                yield Stack(prometheus=client, levels=levels)
            finally:
                process.terminate()
                process.wait(timeout=30)
    finally:
        fleet.stop()


def series(client: Any, expr: str) -> list[Any]:
    try:
        result = client.instant(expr)["result"]
    except panels.PrometheusError:
        return []
    return list(result)


def wait_until_swept(client: Any, process: subprocess.Popen[bytes], directory: Path) -> None:
    """Until the daemon has caught up once and the recording rules have numbers, plus a
    few scrapes more so that rates over the shortest window have two samples."""

    def ready() -> bool:
        if process.poll() is not None:
            log = (directory / "prometheus.log").read_text(errors="replace")
            raise AssertionError(f"prometheus exited: {log}")
        return bool(
            series(client, "cmscan_sweep_last_completed_timestamp_seconds > 0")
            and series(client, "ccg:cmscan_hosts_assessed_compliant:ratio")
        )

    wait_for(ready, timeout=120, what="a completed sweep seen by Prometheus", every=0.5)
    time.sleep(4 * SCRAPE_SECONDS)


def variable_choices(
    client: Any, board: dict[str, Any]
) -> list[tuple[dict[str, str], dict[str, list[str]]]]:
    """(values, options) to evaluate with: every variable All, then (where there are values)
    each set to its first value, chained as Grafana chains them."""
    choices = [panels.resolve_variables(client, board, {})]
    picked: dict[str, list[str]] = {}
    for variable in panels.variables(board):
        if variable["type"] != "query" or variable["name"] in repeated(board):
            continue
        _, options = panels.resolve_variables(client, board, picked)
        if options[variable["name"]]:
            picked[variable["name"]] = options[variable["name"]][:1]
    if picked:
        choices.append(panels.resolve_variables(client, board, picked))
    return choices


def repeated(board: dict[str, Any]) -> set[str]:
    return {p["repeat"] for p in panels.iter_panels(board) if p.get("repeat")}


def evaluate(client: Any, panel: dict[str, Any], query: Any, values: dict[str, str]) -> list[Any]:
    expr = panels.expand(query.expr, values | INTERVALS)
    if query.instant or panel["type"] != "timeseries":
        return list(client.instant(expr)["result"])
    end = time.time()
    return list(client.range(expr, end - 30, end, 1)["result"])


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda p: p.stem)
def test_every_dashboard_query_returns_series(stack: Stack, dashboard: Path) -> None:
    client = stack.prometheus
    board = panels.load_dashboard(dashboard)
    choices = variable_choices(client, board)
    # The variables a level that is not configured drives have no values, and only then.
    for name in ("icb", "pcn", "practice"):
        if name in choices[0][1]:
            assert bool(choices[0][1][name]) == (name in stack.levels), name
    empty = []
    for values, options in choices:
        for panel in panels.iter_panels(board):
            repeat = panel.get("repeat")
            repeats = [values]
            if repeat:
                assert options[repeat], f"no values for repeated panel variable {repeat}"
                repeats = [values | {repeat: panels.regex_value([v])} for v in options[repeat]]
            for value_set in repeats:
                for query in panels.panel_queries(panel):
                    if not evaluate(client, panel, query, value_set):
                        empty.append(
                            (
                                panel["title"],
                                query.ref,
                                panels.expand(query.expr, value_set | INTERVALS),
                            )
                        )
    assert empty == []
    # With specific values the figures really are filtered: fewer hosts than in total.
    if len(choices) > 1 and "ccg" in choices[1][0]:
        total = 'sum(max without (instance, pod) (cmscan_hosts{ccg=~".*"}))'
        one = f'sum(max without (instance, pod) (cmscan_hosts{{ccg=~"{choices[1][0]["ccg"]}"}}))'
        assert float(series(client, one)[0]["value"][1]) <= float(
            series(client, total)[0]["value"][1]
        )


def test_the_health_dashboard_counts_only_cmscan_daemons(stack: Stack) -> None:
    client = stack.prometheus
    (health,) = (p for p in DASHBOARDS if p.stem == "cmscan-health")
    board = panels.load_dashboard(health)
    (panel,) = (p for p in panels.iter_panels(board) if p["title"] == "Daemons up")
    values, _ = panels.resolve_variables(client, board, {})
    assert series(client, 'up{job="prometheus"}'), "the test needs a target that is not cmscan"
    for query in panels.panel_queries(panel):
        (result,) = client.instant(panels.expand(query.expr, values | INTERVALS))["result"]
        assert float(result["value"][1]) == 1, query.legend


def test_the_figures_count_every_host_once(stack: Stack) -> None:
    client = stack.prometheus
    (hosts,) = series(client, "sum(ccg_status:cmscan_hosts:sum)")
    assert float(hosts["value"][1]) == 30
    statuses = {s["metric"]["status"] for s in series(client, "ccg_status:cmscan_hosts:sum")}
    assert {"compliant", "noncompliant", "unreachable", "error", "unknown"} <= statuses


def test_every_rule_loads_and_evaluates_without_error(stack: Stack) -> None:
    groups = stack.prometheus.get("/api/v1/rules")["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    expected = {r["alert"] for r in alert_rules()} | {r["record"] for r in recording_rules()}
    assert set(loaded) == expected
    for name, rule in loaded.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))


def test_every_recording_rule_has_series(stack: Stack) -> None:
    for rule in recording_rules():
        assert series(stack.prometheus, rule["record"]), rule["record"]


def test_every_alert_expression_is_valid_and_watches_real_series(stack: Stack) -> None:
    client = stack.prometheus
    silent = []
    for rule in alert_rules():
        client.instant(rule["expr"])  # raises for an expression Prometheus refuses
        for operand in operands(rule["expr"]):
            result = client.instant(operand)
            if result["resultType"] == "vector" and not result["result"]:
                silent.append((rule["alert"], operand))
    assert silent == []


def test_a_healthy_fleet_fires_no_alert(stack: Stack) -> None:
    assert series(stack.prometheus, 'ALERTS{alertstate="firing"}') == []
