"""The faults table: run the fault suite's real-process tests and write down what each cost.

    .venv/bin/python bench/faults.py            # writes bench/results/faults.{json,md}

Each test kills, starves or cuts off real daemons against a simulated fleet and records the
fault, what was lost, and the seconds until it was made good: every affected host scanned,
or the held results written (tests/daemon/test_faults.py, test_takeover.py and one test of
test_robustness.py); this script gathers those rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TESTS = [
    "tests/daemon/test_faults.py",
    "tests/daemon/test_takeover.py",
    "tests/daemon/test_robustness.py::test_a_postgresql_restart_mid_sweep_loses_nothing",
]


def _commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def run(postgres_url: str) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="cmscan-faults-") as scratch:
        report = Path(scratch) / "faults.jsonl"
        environment = {
            **os.environ,
            "CMSCAN_FAULTS_REPORT": str(report),
            "CMSCAN_TEST_POSTGRES_URL": postgres_url,
            "CMSCAN_REQUIRE_INTEGRATION": "1",
        }
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
            cwd=ROOT,
            env=environment,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"the fault suite failed (exit {done.returncode}); no table written")
        return [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]


def markdown(rows: list[dict[str, object]], meta: dict[str, str]) -> str:
    lines = [
        "# What a fault costs",
        "",
        f"Measured {meta['when']} on {meta['machine']}, commit {meta['commit']}, by"
        " `bench/faults.py` (real daemons, a simulated fleet, defaults: `daemon.lease` 5 min,"
        " `daemon.heartbeat` 5 s, `daemon.heartbeat_timeout` 15 s).",
        "Time to recover runs from the restart (or the repair) until every host the fault left"
        " unscanned had a result, unless the notes say otherwise.",
        "",
        "| fault | lost | time to recover | what recovery means, notes |",
        "|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['fault']} | {row['lost']} | {row['recovered_s']} s | {row['detail'] or ''} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "CMSCAN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="a PostgreSQL server the tests may create databases in",
    )
    args = parser.parse_args()
    rows = run(args.postgres)
    meta = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "commit": _commit(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "faults.json").write_text(
        json.dumps({**meta, "rows": rows}, indent=2) + "\n", encoding="utf-8"
    )
    (RESULTS / "faults.md").write_text(markdown(rows, meta), encoding="utf-8")
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
