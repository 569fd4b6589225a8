"""Benchmark: `cmscan inventory import` of a 10,000-row CSV into a fresh SQLite database."""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sweep_proc import machine as describe_machine  # bench/ is on sys.path when run as a script

RESULTS = Path(__file__).parent / "results"


def write_inventory(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    ccgs = [
        f"{n:02d}{c}" for n, c in zip(range(10, 40), "ABCDEFGHJKLMNPQRSTUVWXYZABCDEF", strict=True)
    ]
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(
            "hostname,address,port,transport,practice_code,pcn_code,ccg_code,icb_code,site,tags\r\n"
        )
        for index in range(rows):
            practice = f"{'ABCDEFGHJKLMNP'[index % 14]}{81000 + index // 8:05d}"
            address = f"10.{index // 65536}.{index // 256 % 256}.{index % 256}"
            handle.write(
                f"{practice}-WS{index % 8:03d},{address},,"
                f"{rng.choice(['winrm', 'winrm', 'winrm-https', 'ssh'])},{practice},"
                f"U{10000 + index // 40:05d},{rng.choice(ccgs)},QHM,Surgery {index // 8},gp\r\n"
            )


def timed_import(csv_path: Path, db_url: str) -> tuple[float, int]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "scanner", "inventory", "import", str(csv_path), "--db", db_url],
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - started, result.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "inventory.csv"
        write_inventory(csv_path, args.rows)
        for attempt in range(args.repeat):
            db_url = f"sqlite:///{Path(tmp) / f'bench{attempt}.db'}"
            fresh, code_fresh = timed_import(csv_path, db_url)
            again, code_again = timed_import(csv_path, db_url)  # nothing changes: a plan only
            if code_fresh or code_again:
                raise SystemExit("the import failed; run it by hand to see why")
            runs.append({"fresh_s": round(fresh, 3), "unchanged_s": round(again, 3)})
    best = {key: min(r[key] for r in runs) for key in ("fresh_s", "unchanged_s")}
    report = {
        "benchmark": "inventory_import",
        "rows": args.rows,
        "machine": {"python": platform.python_version(), **describe_machine()},
        "runs": runs,
        "best": best,
        "note": "wall time of the whole `cmscan inventory import` process, start-up included",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "inventory_import.json").write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{args.rows} rows into fresh SQLite: best {best['fresh_s']} s; "
        f"re-import with no changes: best {best['unchanged_s']} s"
    )


if __name__ == "__main__":
    main()
