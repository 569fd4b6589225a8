"""Benchmark: `cmscan export unpatched` of 100,000 noncompliant hosts: peak memory and speed.

Builds a database where every host is noncompliant (bench/metrics_scrape.py's builder), then
runs the export as a user runs it, in its own process, and reads that process's peak RSS from
the kernel (wait4). A small export and `cmscan --version` give the baseline: a streamed
export should cost about the same memory for 100,000 rows as for 1,000.

    .venv/bin/python bench/export_unpatched.py [--hosts 100000]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Results go to bench/results/export_unpatched.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from metrics_scrape import build_fleet, throwaway_postgres
from sweep_proc import machine as describe_machine  # bench/ is on sys.path when run as a script

RESULTS = Path(__file__).parent / "results"


def _run(args: list[str], cwd: Path) -> dict[str, Any]:
    """Run cmscan; return its wall time and peak resident memory."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CMSCAN_")}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "scanner", *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"cmscan {' '.join(args)} failed: {stderr}")
    return {
        "seconds": round(elapsed, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        "said": stderr.strip().splitlines()[-1] if stderr.strip() else "",
    }


def measure(url: str, hosts: int, directory: Path) -> dict[str, Any]:
    started = time.perf_counter()
    build_fleet(url, hosts, noncompliant_only=True)
    built = time.perf_counter() - started
    out = directory / "unpatched"
    report: dict[str, Any] = {"hosts": hosts, "build_seconds": round(built, 1)}
    report["cmscan_version"] = _run(["--version"], directory)
    # One practice's worth of rows (hosts are spread over 6,300 practices).
    report["one_practice_csv"] = _run(
        ["export", "unpatched", "--db", url, "--practice", "A81000", "-o", f"{out}.small.csv"],
        directory,
    )
    for fmt in ("csv", "json"):
        result = _run(
            ["export", "unpatched", "--db", url, "--format", fmt, "-o", f"{out}.{fmt}"], directory
        )
        size = Path(f"{out}.{fmt}").stat().st_size
        result["bytes"] = size
        result["rows_per_second"] = round(hosts / result["seconds"])
        report[f"all_{fmt}"] = result
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CMSCAN_BENCH_POSTGRES_URL"),
        help="a PostgreSQL server URL on which a throwaway database may be created",
    )
    args = parser.parse_args()
    report: dict[str, Any] = {
        "benchmark": "export_unpatched",
        "machine": {"python": platform.python_version(), **describe_machine()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        url = f"sqlite:///{directory / 'bench.db'}"
        report["sqlite"] = measure(url, args.hosts, directory)
        _print("sqlite", report["sqlite"])
        if args.postgres:
            with throwaway_postgres(args.postgres) as pg_url:
                report["postgresql"] = measure(pg_url, args.hosts, directory)
                _print("postgresql", report["postgresql"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "export_unpatched.json").write_text(json.dumps(report, indent=2) + "\n")


def _print(name: str, result: dict[str, Any]) -> None:
    print(
        f"{name}: {result['hosts']} rows; peak RSS: cmscan --version"
        f" {result['cmscan_version']['peak_rss_mib']} MiB, one practice"
        f" {result['one_practice_csv']['peak_rss_mib']} MiB, all as CSV"
        f" {result['all_csv']['peak_rss_mib']} MiB ({result['all_csv']['seconds']} s,"
        f" {result['all_csv']['bytes'] // 1_000_000} MB), all as JSON"
        f" {result['all_json']['peak_rss_mib']} MiB ({result['all_json']['seconds']} s)"
    )


if __name__ == "__main__":
    main()
