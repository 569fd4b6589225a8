"""`cmscan scan`, `credentials` and JSON logs, run as a user runs them, against the simulator."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.daemon.harness import DaemonProcess, daemons, import_fleet, wait_for, write_config
from tests.fleet import StartFleet


def cmscan(*args: str, config: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CMSCAN_")}
    environment["COLUMNS"] = "160"
    return subprocess.run(
        [sys.executable, "-m", "scanner", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        check=False,
    )


def test_scan_summarises_per_ccg_and_exits_1_when_hosts_fail(
    simulated_fleet: StartFleet, sqlite_url: str, tmp_path: Path
) -> None:
    fleet = simulated_fleet(hosts=24, seed=4, faults=0.5)
    config = write_config(fleet, tmp_path, database_url=sqlite_url)
    asyncio.run(import_fleet(sqlite_url, fleet))
    result = cmscan("scan", "--concurrency", "8", config=config)
    assert result.returncode == 1, result.stderr
    ccgs = {h["ccg"] for h in fleet.manifest()["hosts"]}
    lines = result.stdout.splitlines()
    assert any("Scanned 24 of 24 hosts" in line for line in lines)
    assert all(any(f"│ {ccg} " in line for line in lines) for ccg in ccgs)
    assert "outcomes:" in result.stdout
    # Now only the hosts that came out compliant: every one of them scans cleanly.
    again = cmscan("scan", "--status", "compliant", config=config)
    assert again.returncode == 0, again.stdout + again.stderr


def test_scan_usage_errors(simulated_fleet: StartFleet, sqlite_url: str, tmp_path: Path) -> None:
    fleet = simulated_fleet(hosts=2, seed=4)
    config = write_config(fleet, tmp_path, database_url=sqlite_url)
    asyncio.run(import_fleet(sqlite_url, fleet))
    unknown = cmscan("scan", "--host", "nosuch", config=config)
    assert unknown.returncode == 2
    assert "not in the inventory: nosuch" in unknown.stderr
    nothing = cmscan("scan", "--ccg", "99Z", config=config)
    assert nothing.returncode == 2
    assert "no host in service matches ccg 99Z" in nothing.stderr


def test_a_suspended_credential_resumes_after_the_password_is_fixed(
    simulated_fleet: StartFleet, sqlite_url: str, tmp_path: Path
) -> None:
    fleet = simulated_fleet(hosts=30, seed=9, mix="all-good", https=False, ssh=False)
    right = fleet.manifest()["password"]
    # The daemon takes its secret from a file of ours, which is wrong at first.
    secret = tmp_path / "password"
    secret.write_text("wrong-password-123\n")
    secret.chmod(0o600)
    config = write_config(
        fleet, tmp_path, database_url=sqlite_url, top='log_format = "json"', password_file=secret
    )
    asyncio.run(import_fleet(sqlite_url, fleet))
    daemon = DaemonProcess(config, database_url=sqlite_url, log=tmp_path / "daemon.log")
    with daemons(daemon):
        wait_for(lambda: "suspended" in daemon.log, timeout=60, what="the suspension")
        listing = cmscan("credentials", "list", config=config)
        assert "suspended since" in listing.stdout
        secret.write_text(right + "\n")
        resumed = cmscan("credentials", "resume", "default", config=config)
        assert resumed.returncode == 0
        assert "resumed" in resumed.stdout
        assert cmscan("credentials", "resume", "default", config=config).returncode == 1
        wait_for(
            lambda: "resumed; its secret was read again" in daemon.log,
            timeout=30,
            what="the daemon noticing the resume",
        )
        rescan = cmscan(
            "rescan",
            "--status",
            "auth_failed",
            "--wait",
            "--timeout",
            "90",
            config=config,
            timeout=120,
        )
        assert rescan.returncode == 0, rescan.stdout + rescan.stderr + daemon.log
        assert rescan.stdout.count(": compliant") == 30
        assert daemon.terminate() == 0
    records = [json.loads(line) for line in daemon.log.splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "msg"} <= record.keys() for record in records)
    suspensions = [r for r in records if r["level"] == "error" and "suspended" in r["msg"]]
    assert len(suspensions) == 1  # one ERROR line, saying why and how to resume
    assert "cmscan credentials resume default" in suspensions[0]["msg"]
    assert right not in daemon.log
    assert "wrong-password-123" not in daemon.log
