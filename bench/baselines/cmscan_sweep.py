"""cmscan itself, through the same harness: an inventory imported into a fresh database (not
timed), then one `cmscan scan` process (timed and measured), over WinRM or SSH."""

from __future__ import annotations

import csv
import re
import sqlite3
import sys
from collections.abc import Mapping
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

_OUTCOMES_LINE = re.compile(r"^outcomes: (?P<body>.*)$", re.MULTILINE)
_OUTCOME = re.compile(r"^(?P<name>[a-z_]+) (?P<count>\d+)$")


def parse_outcomes(stdout: str) -> dict[str, int]:
    """The counts of `cmscan scan`'s closing line, `outcomes: auth_failed 2, ok 91` (or `none`).

    Raises ValueError when the line is missing or not in that form: a sweep whose result
    cannot be read is not a measurement.
    """
    found = _OUTCOMES_LINE.findall(stdout)
    if not found:
        raise ValueError("cmscan scan printed no 'outcomes:' line")
    body = found[-1].strip()
    if body == "none":
        return {}
    counts: dict[str, int] = {}
    for part in body.split(","):
        match = _OUTCOME.match(part.strip())
        if match is None:
            raise ValueError(f"cannot read {part.strip()!r} in the outcomes line {body!r}")
        counts[match["name"]] = counts.get(match["name"], 0) + int(match["count"])
    return counts


def ssh_inventory(winrm_inventory: Path, manifest: Mapping[str, Any], out: Path) -> Path:
    """The same hosts as the simulator's inventory, asking cmscan to use their SSH endpoints."""
    ports = {h["hostname"]: h["ssh_port"] for h in manifest["hosts"]}
    return _rewrite(
        winrm_inventory,
        out,
        lambda row: {**row, "transport": "ssh", "port": str(ports[row["hostname"]])},
    )


def subset_inventory(inventory: Path, hostnames: set[str], out: Path) -> Path:
    """Only the named hosts of an inventory (for a comparison on a subset)."""
    return _rewrite(inventory, out, lambda row: row if row["hostname"] in hostnames else None)


def _rewrite(source: Path, out: Path, change: Any) -> Path:
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or ())
        rows = [r for r in (change(row) for row in reader) if r is not None]
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out


def import_command(config: Path, database_url: str, inventory: Path, ods: Path) -> list[str]:
    return [
        sys.executable, "-m", "scanner", "inventory", "import", str(inventory),
        "--ods", str(ods), "--config", str(config), "--db", database_url,
    ]  # fmt: skip


def scan_command(config: Path, database_url: str, concurrency: int) -> list[str]:
    return [
        sys.executable, "-m", "scanner", "scan", "--concurrency", str(concurrency),
        "--config", str(config), "--db", database_url,
    ]  # fmt: skip


def stored_scans(database: Path) -> dict[str, int]:
    """What the sweep left in the database: scans per outcome."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        rows = connection.execute("SELECT outcome, COUNT(*) FROM scan GROUP BY outcome").fetchall()
    return {str(outcome): int(count) for outcome, count in rows}


def stored_facts(database: Path) -> dict[str, str]:
    """The facts kept for each successful scan, by host name: with the scan itself, or as the
    host's latest facts when the scan's were not kept apart (they had not changed)."""
    query = (
        "SELECT h.hostname, NULLIF(s.facts, 'null'), NULLIF(st.facts, 'null') FROM scan s"
        " JOIN host h ON h.id = s.host_id LEFT JOIN host_state st ON st.host_id = s.host_id"
        " WHERE s.outcome = 'ok'"
    )
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        rows = connection.execute(query).fetchall()
    return {str(name): str(own or latest or "") for name, own, latest in rows}


def probe_times(database: Path) -> dict[str, float | None]:
    """From the stored scans: the mean time of a successful probe, the time of all probes
    added up, and the span from the first probe's start to the last one's end."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        rows = connection.execute("SELECT started_at, finished_at, outcome FROM scan").fetchall()
    if not rows:
        return {"probe_s_ok_mean": None, "probe_s_sum": 0.0, "span_s": 0.0}
    spans = [(datetime.fromisoformat(a), datetime.fromisoformat(b), o) for a, b, o in rows]
    answered = [(b - a).total_seconds() for a, b, o in spans if o == "ok"]
    return {
        "probe_s_ok_mean": sum(answered) / len(answered) if answered else None,
        "probe_s_sum": sum((b - a).total_seconds() for a, b, _ in spans),
        "span_s": (max(b for _, b, _ in spans) - min(a for a, _, _ in spans)).total_seconds(),
    }
