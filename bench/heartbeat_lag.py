"""Heartbeat lag under load: how stale a scanner's heartbeat ever looks to the other replicas
while it holds thousands of probes in flight.

    .venv/bin/python bench/heartbeat_lag.py --hosts 7500   # bench/results/heartbeat_lag.json

A simulated fleet whose probes each take `--exec-s` seconds (SSH, so that every probe is a
live connection on the scanner's event loop) is swept by one `cmscan scan` with concurrency
equal to the fleet. Meanwhile the database is read every 0.25 s from outside, as another
replica would, and the age of the scanner's heartbeat is recorded. The claims of a scanner
whose heartbeat is older than daemon.heartbeat_timeout (15 s) would go to the others.

The simulator holds about 2.4 file descriptors per SSH host and the scanner one per probe;
on a machine whose hard limit is 20,000 open files, 7,500 hosts is the most one run holds.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baselines.cmscan_sweep import import_command, ssh_inventory
from bench.sweep import Simulator
from bench.sweep_proc import machine, python_env, source_revision
from simulator.fleet import FleetOptions

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def _heartbeat_age(database: Path) -> tuple[float | None, int, int]:
    """Seconds since the scanner's last heartbeat, scans stored, and hosts claimed now."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as connection:
        row = connection.execute(
            "SELECT heartbeat_at FROM scanner_instance WHERE stopped_at IS NULL"
            " ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
        scans = connection.execute("SELECT COUNT(*) FROM scan").fetchone()[0]
        claimed = connection.execute(
            "SELECT COUNT(*) FROM host_state WHERE lease_owner IS NOT NULL"
        ).fetchone()[0]
    if row is None:
        return None, int(scans), int(claimed)
    beat = datetime.fromisoformat(str(row[0]))
    beat = beat if beat.tzinfo else beat.replace(tzinfo=UTC)
    return (datetime.now(UTC) - beat).total_seconds(), int(scans), int(claimed)


def measure(hosts: int, exec_s: float) -> dict[str, object]:
    env = python_env(ROOT)
    with tempfile.TemporaryDirectory(prefix="cmscan-heartbeat-") as scratch:
        work = Path(scratch)
        options = FleetOptions(
            hosts=hosts, seed=5, rtt_ms=20, exec_ms=exec_s * 1000, transport="ssh"
        )
        simulator = Simulator(options, work / "fleet", ssh=True, cpu=None, env=env)
        simulator.start()
        try:
            manifest = simulator.manifest
            database = work / "cmscan.db"
            url = f"sqlite:///{database}"
            config = Path(manifest["config"])
            # Every probe in flight at once: the practice limit and the deadlines stay out of
            # the way (environment settings, so the fleet's own config is read unchanged).
            env = {
                **env,
                "CMSCAN_SCHEDULE__PER_SITE": "1024",
                "CMSCAN_TIMEOUTS__CONNECT": "30s",
                "CMSCAN_TIMEOUTS__OPERATION": "120s",
                "CMSCAN_TIMEOUTS__TOTAL": "150s",
            }
            inventory = ssh_inventory(Path(manifest["inventory"]), manifest, work / "ssh.csv")
            subprocess.run(
                import_command(config, url, inventory, Path(manifest["epraccur"])),
                check=True,
                env=env,
                capture_output=True,
            )
            ages: list[float] = []
            most_scans = most_claimed = 0
            started = time.monotonic()
            with (work / "scan.log").open("wb") as log:
                scan = subprocess.Popen(
                    [
                        *(sys.executable, "-m", "scanner", "scan", "--concurrency", str(hosts)),
                        *("--config", str(config), "--db", url),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
                while scan.poll() is None:
                    try:
                        age, most_scans, claimed = _heartbeat_age(database)
                        most_claimed = max(most_claimed, claimed)
                    except sqlite3.Error:
                        age = None
                    if age is not None:
                        ages.append(age)
                    time.sleep(0.25)
            took = time.monotonic() - started
        finally:
            simulator.stop()
    return {
        "hosts": hosts,
        "probe_s": exec_s,
        "concurrency": hosts,
        "claimed_peak": most_claimed,  # hosts claimed at once: the probes in flight
        "scans_stored": most_scans,
        "sweep_s": round(took, 1),
        "heartbeat_samples": len(ages),
        "heartbeat_age_max_s": round(max(ages), 2) if ages else None,
        "heartbeat_age_p99_s": round(sorted(ages)[int(len(ages) * 0.99)], 2) if ages else None,
        "heartbeat_interval_s": 5.0,
        "heartbeat_timeout_s": 15.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=7_500)
    parser.add_argument("--exec-s", type=float, default=40.0, help="each probe's run time")
    args = parser.parse_args()
    figures = measure(args.hosts, args.exec_s)
    result = {
        "machine": machine(),
        "commit": source_revision(ROOT),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        **figures,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "heartbeat_lag.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
