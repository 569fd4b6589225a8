"""Faults of real processes: kills at each point of a sweep, rescans whose daemon dies,
SIGTERM while the database is away, and a SQLite file system that fills up or is read-only.

Each asserts that nothing committed is lost, that every host ends with one result for its
due time, that no rescan request is lost, and that the fault left a clear line in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from simulator.fleet_thread import FleetThread
from store import db
from store.model import HostState, RescanRequest, ScannerInstance, utcnow
from store.rescans import Selector, request_rescan
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
    query,
    scanned_hosts,
    unscanned,
    wait_for,
    write_config,
)
from tests.fleet import StartFleet
from tests.support import missing, throwaway_postgres_server

LEASE = "5m"  # the default: only liveness can free a dead daemon's hosts this quickly
HOSTS = 120


def _lease_held(url: str) -> bool:
    rows = query(url, sa.select(HostState.host_id).where(HostState.lease_owner.is_not(None)))
    return bool(rows)


async def _request_rescan(url: str, hostnames: list[str]) -> int:
    database = db.Database(url)
    try:
        async with database.write() as session:
            request = await request_rescan(
                session,
                selector=Selector(hosts=tuple(hostnames)),
                requested_by="test",
                now=utcnow(),
            )
            assert request.id is not None
            return request.id
    finally:
        await database.dispose()


def _rescan_state(url: str, request_id: int) -> tuple[str, int, int]:
    (row,) = query(
        url,
        sa.select(RescanRequest.state, RescanRequest.done_count, RescanRequest.host_count).where(
            RescanRequest.id == request_id
        ),
    )
    return str(row.state), int(row.done_count), int(row.host_count)


def _wait_for_point(point: str, url: str) -> None:
    """Let the sweep reach `point`; the kill comes right after."""
    if point == "claiming":  # hosts claimed, nothing recorded yet
        wait_for(lambda: _lease_held(url), timeout=60, what="the first claim", every=0.02)
    elif point == "probing":  # results committed while many probes are in flight
        wait_for(lambda: committed_scans(url) >= 30, timeout=60, what="30 results")
    else:  # "writing": the moment a batch lands, the next one is on its way
        wait_for(lambda: committed_scans(url) >= 20, timeout=60, what="20 results")
        landed = committed_scans(url)
        wait_for(lambda: committed_scans(url) > landed, timeout=30, what="a batch", every=0.005)


@pytest.mark.parametrize("point", ["claiming", "probing", "writing"])
def test_kill_9_at_each_point_of_a_sweep_loses_nothing(
    simulated_fleet: StartFleet, database_url: str, tmp_path: Path, point: str
) -> None:
    fleet = simulated_fleet(hosts=HOSTS, seed=41, exec_ms=400, transport="winrm", https=False)
    config = write_config(fleet, tmp_path, database_url=database_url, lease=LEASE)
    asyncio.run(import_fleet(database_url, fleet))
    hostnames = [host["hostname"] for host in fleet.manifest()["hosts"][:10]]
    request_id = asyncio.run(_request_rescan(database_url, hostnames))
    first = DaemonProcess(
        config, database_url=database_url, log=tmp_path / "first.log", concurrency=16
    )
    with daemons(first):
        _wait_for_point(point, database_url)
        owner = instance_of(database_url, first.process.pid)
        first.kill()
    committed = committed_scans(database_url)
    stranded = claimed_by(database_url, owner)
    restarted = time.monotonic()
    second = DaemonProcess(
        config, database_url=database_url, log=tmp_path / "second.log", concurrency=16
    )
    with daemons(second):
        wait_for(
            lambda: not unscanned(database_url, stranded),
            timeout=20,
            what="the dead daemon's hosts scanned",
            every=0.1,
        )
        took = time.monotonic() - restarted
        wait_for(lambda: scanned_hosts(database_url) == HOSTS, timeout=120, what="the sweep")
        assert second.terminate() == 0
    assert committed_scans(database_url) >= committed
    assert_scanned_once_each(database_url, HOSTS)
    assert _rescan_state(database_url, request_id) == ("done", 10, 10)
    if stranded:
        assert f"{owner} is no longer running on this machine" in second.log
    if db.is_sqlite(database_url):
        assert_sqlite_intact(database_url)
    backend = "SQLite" if db.is_sqlite(database_url) else "PostgreSQL"
    note_fault(
        f"{backend}: daemon killed (SIGKILL) while {point}, restarted at once",
        lost="nothing committed; a pending rescan finished by the new daemon",
        recovered_s=took,
        detail=f"{len(stranded)} hosts were claimed by the dead daemon",
    )


def test_a_rescan_whose_daemon_dies_is_finished_by_another(
    simulated_fleet: StartFleet, postgres_url: str, tmp_path: Path
) -> None:
    fleet = simulated_fleet(hosts=30, seed=43, exec_ms=3000, transport="winrm", https=False)
    config = write_config(fleet, tmp_path, database_url=postgres_url, lease=LEASE)
    asyncio.run(import_fleet(postgres_url, fleet))
    host = fleet.manifest()["hosts"][0]["hostname"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CMSCAN_")}
    waiting = subprocess.Popen(
        [
            *(sys.executable, "-m", "scanner", "rescan", "--host", host),
            *("--wait", "--timeout", "90", "--config", str(config)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )
    one = DaemonProcess(config, database_url=postgres_url, log=tmp_path / "one.log", concurrency=2)
    two = DaemonProcess(config, database_url=postgres_url, log=tmp_path / "two.log", concurrency=2)
    try:
        with daemons(one, two):
            wait_for(lambda: _lease_held(postgres_url), timeout=30, what="the rescan claimed")
            (row,) = query(
                postgres_url,
                sa.select(HostState.lease_owner).where(HostState.rescan_request_id.is_not(None)),
            )
            # The other daemon may not have registered yet: only the holder surely has.
            (owner,) = query(
                postgres_url,
                sa.select(ScannerInstance.pid).where(ScannerInstance.id == row.lease_owner),
            )
            holder = one if owner.pid == one.process.pid else two
            holder.kill()
            killed = time.monotonic()
            output = waiting.communicate(timeout=60)[0]
            took = time.monotonic() - killed
            survivor = two if holder is one else one
            assert survivor.terminate() == 0
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode in (0, 1), output  # 1: the verdict is noncompliant
    assert f"{host}: " in output, output
    assert took < 30
    note_fault(
        "PostgreSQL: the daemon probing a rescan killed (SIGKILL); `rescan --wait` waiting",
        lost="nothing: the other daemon took the rescan over and `--wait` printed its verdict",
        recovered_s=took,
    )


def test_sigterm_while_the_database_is_away_exits_and_loses_nothing_committed(
    simulated_fleet: StartFleet, tmp_path: Path
) -> None:
    fleet = simulated_fleet(hosts=HOSTS, seed=45, exec_ms=300, transport="winrm", https=False)
    with throwaway_postgres_server() as server:
        url = server.url
        config = write_config(fleet, tmp_path, database_url=url, lease=LEASE)
        asyncio.run(import_fleet(url, fleet))
        first = DaemonProcess(config, database_url=url, log=tmp_path / "first.log", concurrency=8)
        with daemons(first):
            wait_for(lambda: committed_scans(url) >= 20, timeout=60, what="20 results")
            server.stop()
            time.sleep(2)  # probes finish and their results wait for the database
            stopping = time.monotonic()
            code = first.terminate(timeout=60)
            took = time.monotonic() - stopping
        server.start()
        assert code == 0  # a stop asked for: it stopped, saying what it could not write
        log = first.log
        assert "database unavailable" in log, log
        assert "gave up writing" in log, log
        assert "Traceback" not in log, log
        second = DaemonProcess(config, database_url=url, log=tmp_path / "second.log")
        restarted = time.monotonic()
        with daemons(second):
            wait_for(lambda: scanned_hosts(url) == HOSTS, timeout=120, what="the sweep")
            recovered = time.monotonic() - restarted
            assert second.terminate() == 0
        assert_scanned_once_each(url, HOSTS)
    note_fault(
        "PostgreSQL stopped, then the daemon sent SIGTERM",
        lost="results held in memory (their hosts are scanned again); nothing committed",
        recovered_s=recovered,
        detail=f"the daemon exited {took:.0f} s after SIGTERM (grace, then the writer's grace)",
    )


@contextlib.contextmanager
def _fleet_on_a_small_file_system(
    fleet: FleetThread, tmp_path: Path
) -> Iterator[tuple[Path, str, Path]]:
    """The fleet imported into a SQLite file on a 16 MiB tmpfs of the test's own, so that it
    can fill up or turn read-only (needs root): yields the mount, the URL and the config."""
    path = tmp_path / "fs"
    path.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        missing("the mount command, to give the test a file system of its own")
    if mounted.returncode != 0:
        missing(f"mounting a tmpfs as root, to fill a file system ({mounted.stderr.strip()})")
    try:
        url = f"sqlite:///{path / 'cmscan.db'}"
        config = write_config(fleet, tmp_path, database_url=url, lease=LEASE)
        asyncio.run(import_fleet(url, fleet))
        yield path, url, config
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _remount(path: Path, mode: str) -> None:
    done = subprocess.run(
        ["mount", "-o", f"remount,{mode}", str(path)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        missing(f"remounting the test's tmpfs {mode} ({done.stderr.strip()})")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a file system to fill needs root")
def test_a_sqlite_file_system_that_fills_up_loses_nothing(
    simulated_fleet: StartFleet, tmp_path: Path
) -> None:
    fleet = simulated_fleet(hosts=HOSTS, seed=47, exec_ms=300, transport="winrm", https=False)
    with _fleet_on_a_small_file_system(fleet, tmp_path) as (mount, url, config):
        daemon = DaemonProcess(config, database_url=url, log=tmp_path / "daemon.log")
        with daemons(daemon):
            wait_for(lambda: committed_scans(url) >= 20, timeout=60, what="20 results")
            # Write until the file system is full.
            with contextlib.suppress(OSError), (mount / "filler").open("wb") as filler:
                while True:
                    filler.write(b"\0" * (1 << 20))
            before = committed_scans(url)
            time.sleep(4)
            assert daemon.alive()
            assert committed_scans(url) == before  # nothing can be written now
            (mount / "filler").unlink()
            healed = time.monotonic()
            wait_for(lambda: scanned_hosts(url) == HOSTS, timeout=120, what="the sweep")
            recovered = time.monotonic() - healed
            assert daemon.terminate() == 0
        assert_scanned_once_each(url, HOSTS)
        assert_sqlite_intact(url)
        log = daemon.log
        assert "database unavailable" in log, log
        assert f"the file system holding {mount} is full" in log, log
        assert "database available again" in log, log
    note_fault(
        "SQLite: the database's file system filled up, then space was freed",
        lost="nothing: results were held in memory and written once it was writable",
        recovered_s=recovered,
    )


# The kernel refuses to make a file system read-only while a process has a file on it open
# for writing ("mount point is busy"), so a daemon cannot see it turn read-only under it;
# what can happen (a volume mounted read-only after a disk error, then repaired) is a daemon
# started on a file system that is read-only already.
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a file system read-only needs root")
def test_a_daemon_started_on_a_read_only_file_system_says_so_and_loses_nothing(
    simulated_fleet: StartFleet, tmp_path: Path
) -> None:
    fleet = simulated_fleet(hosts=HOSTS, seed=49, exec_ms=300, transport="winrm", https=False)
    with _fleet_on_a_small_file_system(fleet, tmp_path) as (mount, url, config):
        _remount(mount, "ro")
        refused = DaemonProcess(config, database_url=url, log=tmp_path / "refused.log")
        with daemons(refused):
            code = refused.process.wait(timeout=60)
            refused.close()
        # 75 (EX_TEMPFAIL, the database unavailable), not 2 (a bad configuration): systemd's
        # Restart=on-failure tries again.
        assert code == 75, refused.log
        assert f"the file system holding {mount} is read-only" in refused.log, refused.log
        assert "Traceback" not in refused.log, refused.log
        _remount(mount, "rw")
        assert_sqlite_intact(url)
        daemon = DaemonProcess(config, database_url=url, log=tmp_path / "daemon.log")
        restarted = time.monotonic()
        with daemons(daemon):
            wait_for(lambda: scanned_hosts(url) == HOSTS, timeout=120, what="the sweep")
            recovered = time.monotonic() - restarted
            assert daemon.terminate() == 0
        assert_scanned_once_each(url, HOSTS)
        assert_sqlite_intact(url)
    note_fault(
        "SQLite: the daemon started on a read-only file system, restarted once writable",
        lost="nothing: the daemon refused to start, naming the read-only file system",
        recovered_s=recovered,
    )
