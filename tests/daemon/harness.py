"""Running real daemons against a simulated fleet: config files, processes, and waiting."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from simulator.fleet_thread import FleetThread
from store import db
from store.inventory_import import import_inventory
from store.model import HostState, Scan, ScannerInstance

# Short deadlines keep black-holed hosts from slowing the tests; the lease must outlast them.
FAST = """
[timeouts]
connect = "1s"
operation = "3s"
total = "4s"

[daemon]
lease = "{lease}"
grace = "5s"
poll_interval = "0.2s"
flush_interval = "0.2s"
"""


def write_config(
    fleet: FleetThread,
    directory: Path,
    *,
    database_url: str,
    top: str = "",
    extra: str = "",
    password_file: Path | None = None,
    lease: str = "6s",
) -> Path:
    """A config for this fleet: its credentials, CA and known_hosts, and the given database.
    `top` holds root keys (they must precede tables), `extra` more tables. The short lease
    frees a killed daemon's hosts quickly; give the default "5m" to see liveness do it."""
    source = Path(fleet.manifest()["config"]).read_text(encoding="utf-8")
    lines = [line for line in source.splitlines() if not line.startswith("database_url")]
    if password_file is not None:
        lines = [
            f'password_file = "{password_file}"' if line.startswith("password_file") else line
            for line in lines
        ]
    path = directory / "cmscan.toml"
    text = (
        f'database_url = "{database_url}"\n{top}\n'
        + "\n".join(lines)
        + FAST.format(lease=lease)
        + extra
    )
    path.write_text(text, encoding="utf-8")
    return path


async def import_fleet(database_url: str, fleet: FleetThread, *, users: bool = False) -> None:
    """The fleet's inventory and ODS file, and with `users` its CIM users report too."""
    manifest = fleet.manifest()
    db.upgrade(database_url)
    database = db.Database(database_url)
    try:
        report = await import_inventory(
            database,
            path=Path(manifest["inventory"]),
            fmt="csv",
            ods_path=Path(manifest["epraccur"]),
        )
        assert report.written, [str(p) for p in report.inventory.problems]
        if users:
            from engine.access import import_access

            imported = await import_access(database, path=Path(manifest["users_report"]))
            assert imported.written, [str(p) for p in imported.report.problems]
    finally:
        await database.dispose()


def query(database_url: str, statement: Any) -> list[Any]:
    """Run a read query with a blocking engine (tests poll while daemons write)."""
    engine = sa.create_engine(db.sync_url(database_url))
    try:
        with engine.connect() as connection:
            return list(connection.execute(statement).all())
    finally:
        engine.dispose()


def scalar(database_url: str, statement: Any) -> Any:
    return query(database_url, statement)[0][0]


def wait_for(
    condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.25
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class DaemonProcess:
    """`cmscan daemon` as a user runs it, in its own process."""

    def __init__(
        self, config: Path, *, database_url: str, log: Path, concurrency: int = 20
    ) -> None:
        self.log_path = log
        self._log_file = log.open("w")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CMSCAN_")}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scanner",
                "daemon",
                "--config",
                str(config),
                "--db",
                database_url,
                "--listen",
                "127.0.0.1:0",
                "--concurrency",
                str(concurrency),
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=environment,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log_file.close()

    def terminate(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._log_file.close()
        return code

    def close(self) -> None:
        """Release the log file of a process that has already exited."""
        self._log_file.close()

    def alive(self) -> bool:
        return self.process.poll() is None


@contextmanager
def daemons(*processes: DaemonProcess) -> Iterator[None]:
    """Make sure no daemon outlives its test, whatever happens."""
    try:
        yield
    finally:
        for process in processes:
            if process.alive():
                process.kill()


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def committed_scans(url: str) -> int:
    return int(scalar(url, sa.select(sa.func.count()).select_from(Scan)))


def scanned_hosts(url: str) -> int:
    statement = (
        sa.select(sa.func.count()).select_from(HostState).where(HostState.last_scan_at.is_not(None))
    )
    return int(scalar(url, statement))


def instance_of(url: str, pid: int) -> str:
    """The scanner_instance id a daemon process registered under."""
    (row,) = query(url, sa.select(ScannerInstance.id).where(ScannerInstance.pid == pid))
    return str(row.id)


def claimed_by(url: str, owner: str) -> set[int]:
    rows = query(url, sa.select(HostState.host_id).where(HostState.lease_owner == owner))
    return {int(row.host_id) for row in rows}


def unscanned(url: str, host_ids: set[int]) -> set[int]:
    rows = query(
        url,
        sa.select(HostState.host_id).where(
            HostState.host_id.in_(sorted(host_ids)), HostState.last_scan_at.is_(None)
        ),
    )
    return {int(row.host_id) for row in rows}


def assert_scanned_once_each(url: str, hosts: int) -> None:
    """Every host has exactly one scan: a first sweep has one due time per host."""
    per_host = query(url, sa.select(Scan.host_id, sa.func.count()).group_by(Scan.host_id))
    assert len(per_host) == hosts
    assert max(count for _, count in per_host) == 1, "a host was scanned twice"


def assert_sqlite_intact(url: str) -> None:
    path = db.sqlite_path(url)
    assert path is not None
    with sqlite3.connect(path) as connection:
        assert connection.execute("pragma integrity_check").fetchone() == ("ok",)
