"""A real Prometheus scrapes a real daemon sweeping the simulated fleet; the numbers must agree.

The daemon runs as a user runs it; Prometheus runs from the Debian package with a generated
config (1 s scrape interval, storage in a temporary directory). The per-CCG figures that
Prometheus stores are compared with what the database says, and promtool lints /metrics.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col

from store.model import Host, HostState
from tests.daemon.harness import DaemonProcess, daemons, import_fleet, query, wait_for, write_config
from tests.fleet import StartFleet
from tests.support import free_port, need_executable

LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


@contextmanager
def prometheus(target: str, directory: Path) -> Iterator[str]:
    """Prometheus scraping `target` every second; yields its base URL."""
    binary = need_executable("prometheus", "prometheus (Debian package)")
    config = directory / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: cmscan\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n",
        encoding="utf-8",
    )
    port = free_port()
    log = (directory / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()


def instant(base: str, expression: str) -> list[dict[str, Any]]:
    try:
        response = httpx.get(f"{base}/api/v1/query", params={"query": expression}, timeout=5)
    except httpx.TransportError:
        return []  # not up yet
    body = response.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def stored_hosts(base: str) -> dict[tuple[str, str], int]:
    return {
        (s["metric"]["ccg"], s["metric"]["status"]): int(float(s["value"][1]))
        for s in instant(base, "cmscan_hosts")
    }


def stored_failures(base: str) -> dict[tuple[str, str], int]:
    expression = 'cmscan_rule_failures{severity="required"} > 0'
    return {
        (s["metric"]["ccg"], s["metric"]["rule"]): int(float(s["value"][1]))
        for s in instant(base, expression)
    }


def database_hosts(url: str) -> dict[tuple[str, str], int]:
    rows = query(
        url,
        sa.select(col(Host.ccg_code), col(HostState.status))
        .join(HostState, col(HostState.host_id) == col(Host.id))
        .where(col(Host.retired_at).is_(None)),
    )
    counts = Counter((ccg or "unknown", status) for ccg, status in rows)
    ccgs = {ccg for ccg, _ in counts}
    statuses = ("compliant", "noncompliant", "unreachable", "auth_failed", "error", "unknown")
    return {(ccg, status): counts.get((ccg, status), 0) for ccg in ccgs for status in statuses}


def database_failures(url: str) -> dict[tuple[str, str], int]:
    rows = query(
        url,
        sa.select(col(Host.ccg_code), col(HostState.failing_rules))
        .join(HostState, col(HostState.host_id) == col(Host.id))
        .where(col(Host.retired_at).is_(None)),
    )
    return dict(Counter((ccg or "unknown", rule) for ccg, rules in rows for rule in rules or ()))


def test_prometheus_stores_the_per_ccg_figures_the_database_holds(
    simulated_fleet: StartFleet, sqlite_url: str, tmp_path: Path
) -> None:
    promtool = need_executable("promtool", "prometheus (Debian package)")
    fleet = simulated_fleet(hosts=60, seed=1, faults=0.25, transport="mixed")  # two CCGs
    config = write_config(
        fleet, tmp_path, database_url=sqlite_url, extra='\n[metrics]\ncache = "0s"\n'
    )
    asyncio.run(import_fleet(sqlite_url, fleet))
    daemon = DaemonProcess(config, database_url=sqlite_url, log=tmp_path / "daemon.log")
    with daemons(daemon):
        wait_for(lambda: LISTENING.search(daemon.log) is not None, timeout=60, what="the daemon")
        match = LISTENING.search(daemon.log)
        assert match is not None
        target = f"127.0.0.1:{match[1]}"
        scanned = sa.select(sa.func.count()).where(col(HostState.last_scan_at).is_not(None))
        with prometheus(target, tmp_path) as base:
            wait_for(
                lambda: query(sqlite_url, scanned)[0][0] >= 50,
                timeout=90,
                what="the daemon's first sweep",
            )

            def agree() -> bool:
                hosts = database_hosts(sqlite_url)
                return stored_hosts(base) == hosts and stored_failures(base) == database_failures(
                    sqlite_url
                )

            wait_for(agree, timeout=90, what="Prometheus to store the database's figures")
            hosts = database_hosts(sqlite_url)
            assert sum(hosts.values()) == 60
            assert len({ccg for ccg, _ in hosts}) >= 2
            assert sum(n for (_, status), n in hosts.items() if status == "noncompliant") > 0
            assert sum(n for (_, status), n in hosts.items() if status == "unreachable") > 0
            assert database_failures(sqlite_url)
            up = instant(base, 'up{job="cmscan"}')
            assert [s["value"][1] for s in up] == ["1"]
            assert instant(base, "cmscan_database_up")[0]["value"][1] == "1"
            assert instant(base, "sum(cmscan_scans_total)")[0]["value"][1] != "0"
        body = httpx.get(f"http://{target}/metrics", timeout=10).content
        linted = subprocess.run(
            [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
        )
        assert linted.returncode == 0, linted.stdout.decode() + linted.stderr.decode()
        assert daemon.terminate() == 0, daemon.log
