"""A killed daemon's hosts go to the living within the heartbeat timeout, not the lease."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.daemon.faults_report import note_fault
from tests.daemon.harness import (
    DaemonProcess,
    assert_scanned_once_each,
    assert_sqlite_intact,
    claimed_by,
    committed_scans,
    daemons,
    import_fleet,
    instance_of,
    scanned_hosts,
    unscanned,
    wait_for,
    write_config,
)
from tests.fleet import StartFleet

# The defaults a user runs with: claims last five minutes, a daemon silent for 15 s is dead.
LEASE = "5m"


def test_a_daemon_restarted_after_kill_9_scans_every_host_within_a_minute(
    simulated_fleet: StartFleet, sqlite_url: str, tmp_path: Path
) -> None:
    """The trial from the field: 400 hosts, 0.8-2 s probes, concurrency 64, SQLite."""
    fleet = simulated_fleet(hosts=400, seed=17, exec_ms=1400, transport="winrm")
    config = write_config(fleet, tmp_path, database_url=sqlite_url, lease=LEASE)
    asyncio.run(import_fleet(sqlite_url, fleet))
    first = DaemonProcess(
        config, database_url=sqlite_url, log=tmp_path / "first.log", concurrency=64
    )
    with daemons(first):
        wait_for(lambda: committed_scans(sqlite_url) >= 20, timeout=60, what="the first results")
        owner = instance_of(sqlite_url, first.process.pid)
        first.kill()
    stranded = claimed_by(sqlite_url, owner)
    assert stranded, "the kill should leave claimed hosts behind"
    restarted = time.monotonic()
    second = DaemonProcess(
        config, database_url=sqlite_url, log=tmp_path / "second.log", concurrency=64
    )
    with daemons(second):
        wait_for(
            lambda: scanned_hosts(sqlite_url) == 400,
            timeout=60,
            what="every host scanned within 60 s of the restart",
        )
        took = time.monotonic() - restarted
        assert second.terminate() == 0
    assert f"{owner} is no longer running on this machine" in second.log, second.log
    assert took < 60
    assert_scanned_once_each(sqlite_url, 400)
    note_fault(
        "SQLite: daemon killed (SIGKILL) mid-sweep, restarted at once (400 hosts)",
        lost="nothing committed; in-flight probes are run again",
        recovered_s=took,
        detail=f"{len(stranded)} hosts were claimed by the dead daemon",
    )
    assert_sqlite_intact(sqlite_url)


def test_three_daemons_on_postgresql_take_over_a_killed_ones_hosts_within_20_s(
    simulated_fleet: StartFleet, postgres_url: str, tmp_path: Path
) -> None:
    fleet = simulated_fleet(hosts=600, seed=9, exec_ms=1000, transport="winrm", https=False)
    config = write_config(fleet, tmp_path, database_url=postgres_url, lease=LEASE)
    asyncio.run(import_fleet(postgres_url, fleet))
    replicas = [
        DaemonProcess(config, database_url=postgres_url, log=tmp_path / f"d{n}.log", concurrency=24)
        for n in range(3)
    ]
    victim = replicas[0]
    with daemons(*replicas):
        wait_for(lambda: committed_scans(postgres_url) >= 60, timeout=90, what="the first results")
        owner = instance_of(postgres_url, victim.process.pid)
        victim.kill()
        killed = time.monotonic()
        stranded = claimed_by(postgres_url, owner)
        assert stranded, "the kill should leave claimed hosts behind"
        wait_for(
            lambda: not unscanned(postgres_url, stranded),
            timeout=20,
            what="the killed daemon's hosts scanned by the others",
            every=0.1,
        )
        took = time.monotonic() - killed
        wait_for(lambda: scanned_hosts(postgres_url) == 600, timeout=120, what="the whole sweep")
        for survivor in replicas[1:]:
            assert survivor.terminate() == 0
    assert took < 20
    assert_scanned_once_each(postgres_url, 600)
    note_fault(
        "PostgreSQL: one of three daemons killed (SIGKILL) mid-sweep (600 hosts)",
        lost="nothing committed; in-flight probes are run again",
        recovered_s=took,
        detail=f"{len(stranded)} hosts taken over from the dead daemon",
    )
