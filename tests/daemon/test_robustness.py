"""Daemons killed with SIGKILL, sharing a fleet, and outliving a PostgreSQL restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from store.model import Scan
from tests.daemon.faults_report import note_fault
from tests.daemon.harness import (
    DaemonProcess,
    committed_scans,
    daemons,
    import_fleet,
    query,
    scanned_hosts,
    wait_for,
    write_config,
)
from tests.fleet import StartFleet
from tests.support import throwaway_postgres_server


def test_kill_9_mid_sweep_loses_no_committed_result(
    simulated_fleet: StartFleet, sqlite_url: str, tmp_path: Path
) -> None:
    fleet = simulated_fleet(hosts=150, seed=21, exec_ms=150, transport="winrm")
    config = write_config(fleet, tmp_path, database_url=sqlite_url)
    asyncio.run(import_fleet(sqlite_url, fleet))
    first = DaemonProcess(
        config, database_url=sqlite_url, log=tmp_path / "first.log", concurrency=8
    )
    with daemons(first):
        wait_for(lambda: committed_scans(sqlite_url) >= 40, timeout=90, what="40 committed scans")
        first.kill()
    committed = {row.id for row in query(sqlite_url, sa.select(Scan.id))}
    assert 40 <= len(committed) < 150
    # The SQLite lock went with the killed process: a new daemon starts at once and takes
    # over the dead one's leases when they expire.
    second = DaemonProcess(
        config, database_url=sqlite_url, log=tmp_path / "second.log", concurrency=8
    )
    with daemons(second):
        wait_for(
            lambda: scanned_hosts(sqlite_url) == 150,
            timeout=120,
            what="every host scanned after the restart",
        )
        assert second.terminate() == 0
    assert committed <= {row.id for row in query(sqlite_url, sa.select(Scan.id))}
    per_host = query(sqlite_url, sa.select(Scan.host_id, sa.func.count()).group_by(Scan.host_id))
    assert len(per_host) == 150
    assert all(count == 1 for _, count in per_host)


def test_two_daemons_share_1000_hosts_and_one_survives_the_others_kill_9(
    simulated_fleet: StartFleet, postgres_url: str, tmp_path: Path
) -> None:
    fleet = simulated_fleet(
        hosts=1000, seed=8, exec_ms=20, rtt_ms=1, transport="ssh", https=False, winrm=False
    )
    config = write_config(fleet, tmp_path, database_url=postgres_url)
    asyncio.run(import_fleet(postgres_url, fleet))
    one = DaemonProcess(config, database_url=postgres_url, log=tmp_path / "one.log", concurrency=24)
    two = DaemonProcess(config, database_url=postgres_url, log=tmp_path / "two.log", concurrency=24)
    with daemons(one, two):
        wait_for(
            lambda: committed_scans(postgres_url) >= 250, timeout=180, what="250 committed scans"
        )
        one.kill()
        wait_for(
            lambda: scanned_hosts(postgres_url) == 1000,
            timeout=300,
            what="the survivor finishing the sweep",
        )
        assert two.terminate() == 0
    per_host = query(postgres_url, sa.select(Scan.host_id, sa.func.count()).group_by(Scan.host_id))
    assert len(per_host) == 1000
    assert max(count for _, count in per_host) == 1  # no host scanned twice
    scanners = {
        row.scanner_id for row in query(postgres_url, sa.select(Scan.scanner_id).distinct())
    }
    assert len(scanners) == 2  # both daemons did part of the work


def test_a_postgresql_restart_mid_sweep_loses_nothing(
    simulated_fleet: StartFleet, tmp_path: Path
) -> None:
    fleet = simulated_fleet(hosts=200, seed=31, exec_ms=100, transport="winrm")
    with throwaway_postgres_server() as server:
        url = server.url
        config = write_config(fleet, tmp_path, database_url=url)
        asyncio.run(import_fleet(url, fleet))
        daemon = DaemonProcess(
            config, database_url=url, log=tmp_path / "daemon.log", concurrency=10
        )
        with daemons(daemon):
            wait_for(lambda: committed_scans(url) >= 30, timeout=90, what="30 committed scans")
            server.stop()
            time.sleep(6)  # long enough for probes to finish while the database is away
            assert daemon.alive()
            server.start()
            restarted = time.monotonic()
            held = committed_scans(url)
            wait_for(lambda: committed_scans(url) > held, timeout=60, what="writes resuming")
            took = time.monotonic() - restarted
            wait_for(
                lambda: scanned_hosts(url) == 200,
                timeout=180,
                what="the sweep completing after the restart",
            )
            assert daemon.terminate() == 0
        per_host = query(url, sa.select(Scan.host_id, sa.func.count()).group_by(Scan.host_id))
        assert len(per_host) == 200
        log = daemon.log
        assert log.count("database unavailable") == 1, log
        assert "database available again" in log
    note_fault(
        "PostgreSQL stopped for 6 s mid-sweep, then started",
        lost="nothing: results were held in memory and written when it returned",
        recovered_s=took,
        detail="until the held results were written; the daemon stayed up throughout",
    )


def test_a_sweep_stopped_while_the_database_is_down_still_exits(
    simulated_fleet: StartFleet, tmp_path: Path
) -> None:
    fleet = simulated_fleet(hosts=60, seed=32, exec_ms=300, transport="winrm")
    with throwaway_postgres_server() as server:
        url = server.url
        config = write_config(fleet, tmp_path, database_url=url)
        asyncio.run(import_fleet(url, fleet))
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CMSCAN_")}
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scanner",
                "scan",
                "--concurrency",
                "4",
                "--config",
                str(config),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment,
        )
        try:
            wait_for(lambda: committed_scans(url) >= 5, timeout=90, what="5 committed scans")
            server.stop()
            time.sleep(2)  # probes finish and their results wait for the database
            process.send_signal(signal.SIGTERM)
            # grace (5 s in FAST) for the probes, then as long again for the writer.
            output = process.communicate(timeout=40)[0]
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
            server.start()
    assert process.returncode != 0, output
    assert "gave up writing" in output
    assert "Traceback" not in output
