"""Benchmark: `cmscan access import` of a 100,000-row CIM users report, fresh and again.

    .venv/bin/python bench/access_import.py [--rows 100000] [--postgres URL]

The fleet is the 10,000-host inventory of bench/inventory_import.py (1,250 practices); the
report holds users at those practices (some at several, some with one code per row, as
real exports have). Each run times the whole command, start-up included: a fresh import,
the same report again (nothing to write), and a report with 5% of the users' codes changed.
"""

from __future__ import annotations

import argparse
import codecs
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from inventory_import import write_inventory  # bench/ is on sys.path when run as a script
from sweep_proc import machine as describe_machine

RESULTS = Path(__file__).parent / "results"
PRACTICES = [f"{'ABCDEFGHJKLMNP'[i % 14]}{81000 + i // 8:05d}" for i in range(0, 10_000, 8)]
GRANTING = ["B0360", "B0258", "B0945", "B0560"]
OTHER = ["B0264", "B0572", "B0068", "B0082", "B1300"]


def write_report(path: Path, rows: int, *, changed: float = 0.0, seed: int = 11) -> None:
    """About `rows` rows: one per user and practice, a few users with one row per code."""
    rng = random.Random(seed)
    change = random.Random(seed + 1)
    lines = ["User ID;Surname;Forename;Organisation Code;Role Code;Activity Codes"]
    user = 0
    while len(lines) <= rows:
        user += 1
        user_id = f"{500000000000 + user:012d}"
        name = f"Surname{user};Forename{user % 97}"
        for practice in rng.sample(PRACTICES, 1 if rng.random() < 0.9 else 3):
            codes = rng.sample(GRANTING, 1) if rng.random() < 0.8 else rng.sample(OTHER, 1)
            codes += rng.sample(OTHER, rng.randint(0, 2))
            if change.random() < changed:
                codes = change.sample(OTHER, 1)
            if rng.random() < 0.05:
                lines += [f"{user_id};{name};{practice};R8000;{code}" for code in codes]
            else:
                lines.append(f'{user_id};{name};{practice};R8000;"{"; ".join(codes)}"')
    path.write_bytes(codecs.BOM_UTF8 + ("\r\n".join(lines[: rows + 1]) + "\r\n").encode())


def cmscan(*args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "scanner", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"cmscan {' '.join(args[:2])} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def run(db_url: str, tmp: Path, rows: int) -> dict[str, float]:
    inventory, report, changed = tmp / "inventory.csv", tmp / "users.csv", tmp / "changed.csv"
    write_inventory(inventory, 10_000)
    write_report(report, rows)
    write_report(changed, rows, changed=0.05)
    cmscan("inventory", "import", str(inventory), "--db", db_url)
    return {
        "fresh_s": round(cmscan("access", "import", str(report), "--db", db_url), 2),
        "unchanged_s": round(cmscan("access", "import", str(report), "--db", db_url), 2),
        "five_percent_changed_s": round(
            cmscan("access", "import", str(changed), "--db", db_url), 2
        ),
        "status_s": round(cmscan("access", "status", "--group", "ccg", "--db", db_url), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", help="also run on this (empty) PostgreSQL database URL")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="cmscan-access-") as scratch:
        tmp = Path(scratch)
        results["sqlite"] = run(f"sqlite:///{tmp / 'bench.db'}", tmp, args.rows)
        if args.postgres:
            results["postgresql"] = run(args.postgres, tmp, args.rows)
    report = {
        "benchmark": "access_import",
        "rows": args.rows,
        "machine": {"python": platform.python_version(), **describe_machine()},
        "results": results,
        "note": "wall time of each whole `cmscan` process, start-up included",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "access_import.json").write_text(json.dumps(report, indent=2) + "\n")
    for backend, figures in results.items():
        print(f"{backend}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
