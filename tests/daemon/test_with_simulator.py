"""The scanner against the simulated fleet over real WinRM and SSH, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from collectors.base import Collector, ScanResult, Target, Timeouts
from collectors.credentials import Credentials
from config.settings import Settings, load_settings
from engine.runtime import build_runtime
from engine.sweep import SweepTally, run_sweep
from engine.transports import build_collectors
from store import db
from store.model import Host, HostState, Scan
from store.rescans import Selector, select_hosts
from tests.daemon.harness import (
    DaemonProcess,
    daemons,
    import_fleet,
    query,
    scalar,
    wait_for,
    write_config,
)
from tests.fleet import StartFleet


async def sweep_all(
    settings: Settings, *, concurrency: int = 32, wrap: Any = None
) -> tuple[SweepTally, bool]:
    collectors = build_collectors(settings, database=db.Database(settings.database_url))
    if wrap is not None:
        collectors = {name: wrap(c) for name, c in collectors.items()}
    runtime = await build_runtime(
        settings, collectors=collectors, scanner_id="test-sweep", concurrency=concurrency
    )
    try:
        async with runtime.database.read() as session:
            ids = await select_hosts(session, Selector(), everything_if_empty=True)
        tally = SweepTally(total=len(ids))
        complete = await run_sweep(
            runtime, host_ids=ids, tally=tally, stop=asyncio.Event(), grace=timedelta(seconds=5)
        )
        return tally, complete
    finally:
        await runtime.close()


def test_a_sweep_gives_every_profile_its_declared_verdict(
    simulated_fleet: StartFleet, database_url: str, tmp_path: Path
) -> None:
    fleet = simulated_fleet(hosts=48, seed=11, faults=0.35, transport="mixed")
    config = write_config(fleet, tmp_path, database_url=database_url)
    asyncio.run(import_fleet(database_url, fleet))
    settings = load_settings(config_file=config)
    tally, complete = asyncio.run(sweep_all(settings))
    assert complete
    assert tally.done == 48
    rows = query(
        database_url,
        sa.select(
            Host.hostname,
            HostState.status,
            HostState.failing_rules,
            HostState.advisories,
            HostState.last_outcome,
        ).join(HostState, HostState.host_id == Host.id),
    )
    seen = {r.hostname: r for r in rows}
    mismatches = []
    for expected in fleet.manifest()["hosts"]:
        row = seen[expected["hostname"]]
        got = (row.last_outcome, row.status)
        want = (expected["expected_outcome"], expected["expected_status"])
        if expected["expected_outcome"] == "ok":
            got += (sorted(row.failing_rules), sorted(row.advisories))
            want += (
                sorted(expected["expected_failing_rules"]),
                sorted(expected["expected_advisories"]),
            )
        if got != want:
            mismatches.append(
                (expected["hostname"], expected["profile"], expected["fault"], got, want)
            )
    assert mismatches == []
    # Faults as well as profiles were exercised, over all three transports.
    manifest = fleet.manifest()["hosts"]
    assert len({h["fault"] for h in manifest}) >= 5
    assert {h["transport"] for h in manifest} == {"winrm", "winrm-https", "ssh"}


class Counting:
    """Wraps a real collector to count the hosts it really contacts."""

    def __init__(self, inner: Collector) -> None:
        self.inner = inner
        self.name = inner.name
        self.contacted: list[str] = []

    async def collect(
        self, target: Target, credentials: Credentials, timeouts: Timeouts
    ) -> ScanResult:
        self.contacted.append(target.hostname)
        return await self.inner.collect(target, credentials, timeouts)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_wrong_password_for_500_hosts_contacts_at_most_three(
    simulated_fleet: StartFleet, sqlite_url: str, tmp_path: Path
) -> None:
    fleet = simulated_fleet(hosts=500, seed=5, mix="all-good", https=False, ssh=False)
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password")
    wrong.chmod(0o600)
    config = write_config(fleet, tmp_path, database_url=sqlite_url, password_file=wrong)
    asyncio.run(import_fleet(sqlite_url, fleet))
    wrapped: list[Counting] = []

    def wrap(collector: Collector) -> Counting:
        wrapped.append(Counting(collector))
        return wrapped[-1]

    tally, complete = asyncio.run(
        sweep_all(load_settings(config_file=config), concurrency=200, wrap=wrap)
    )
    assert complete
    assert tally.outcomes == {"auth_failed": 500}
    assert sum(len(w.contacted) for w in wrapped) <= 3
    reasons = query(sqlite_url, sa.select(Scan.reason))
    assert sum("credential suspended" in r.reason for r in reasons) >= 497
    assert sum("credential suspended" not in r.reason for r in reasons) <= 3


def test_a_fixed_machine_shows_compliant_after_rescan_wait(
    simulated_fleet: StartFleet, database_url: str, tmp_path: Path
) -> None:
    fleet = simulated_fleet(hosts=8, seed=2, mix="all-bad", transport="winrm")
    config = write_config(fleet, tmp_path, database_url=database_url)
    asyncio.run(import_fleet(database_url, fleet))
    target = next(
        h
        for h in fleet.manifest()["hosts"]
        if h["expected_failing_rules"] == ["cm-installed"]
        or "cm-installed" in h["expected_failing_rules"]
    )
    daemon = DaemonProcess(config, database_url=database_url, log=tmp_path / "daemon.log")
    with daemons(daemon):
        wait_for(
            lambda: scalar(database_url, sa.select(sa.func.count()).select_from(Scan)) >= 8,
            timeout=60,
            what="the daemon's first sweep",
        )
        change = fleet.apply("install-cm-4.1", hostnames=(target["hostname"],))
        assert change.changed
        expected = next(h for h in fleet.manifest()["hosts"] if h["hostname"] == target["hostname"])
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CMSCAN_")}
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "scanner",
                "rescan",
                "--host",
                target["hostname"].upper(),
                "--wait",
                "--timeout",
                "60",
                "--config",
                str(config),
                "--db",
                database_url,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            env=environment,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr + daemon.log
        assert f"{target['hostname']}: {expected['expected_status']}" in result.stdout
        assert "no cmscan daemon is running" not in result.stderr
        assert daemon.terminate() == 0
    assert "released" in daemon.log


def test_a_second_daemon_on_one_sqlite_database_is_refused(
    simulated_fleet: StartFleet, sqlite_url: str, tmp_path: Path
) -> None:
    fleet = simulated_fleet(hosts=2, seed=3)
    config = write_config(fleet, tmp_path, database_url=sqlite_url)
    asyncio.run(import_fleet(sqlite_url, fleet))
    first = DaemonProcess(config, database_url=sqlite_url, log=tmp_path / "first.log")
    with daemons(first):
        wait_for(lambda: "started" in first.log, timeout=30, what="the first daemon")
        second = DaemonProcess(config, database_url=sqlite_url, log=tmp_path / "second.log")
        assert second.process.wait(timeout=60) == 2
        second.close()
        assert "another cmscan daemon" in second.log
        assert "SQLite allows one daemon per database" in second.log
        assert first.terminate() == 0


def test_postgresql_daemons_wake_on_notify_not_polling(
    simulated_fleet: StartFleet, postgres_url: str, tmp_path: Path
) -> None:
    fleet = simulated_fleet(hosts=3, seed=3, transport="ssh")
    # Poll only every two minutes: a rescan answered sooner can only have come through
    # LISTEN/NOTIFY.
    config = write_config(fleet, tmp_path, database_url=postgres_url)
    config.write_text(
        config.read_text().replace('poll_interval = "0.2s"', 'poll_interval = "120s"')
    )
    asyncio.run(import_fleet(postgres_url, fleet))
    daemon = DaemonProcess(config, database_url=postgres_url, log=tmp_path / "daemon.log")
    with daemons(daemon):
        wait_for(
            lambda: scalar(postgres_url, sa.select(sa.func.count()).select_from(Scan)) >= 3,
            timeout=60,
            what="the first sweep",
        )
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CMSCAN_")}
        host = fleet.manifest()["hosts"][0]["hostname"]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "scanner",
                "rescan",
                "--host",
                host,
                "--wait",
                "--timeout",
                "60",
                "--config",
                str(config),
                "--db",
                postgres_url,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            env=environment,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr + daemon.log
        assert host in result.stdout
        assert daemon.terminate() == 0
