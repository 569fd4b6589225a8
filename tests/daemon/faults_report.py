"""Fault tests write down what each fault cost, for bench/faults.py to turn into a table."""

from __future__ import annotations

import json
import os
from pathlib import Path

# Set by bench/faults.py; without it the figures are checked but not kept.
REPORT_ENV = "CMSCAN_FAULTS_REPORT"


def note_fault(fault: str, *, lost: str, recovered_s: float, detail: str = "") -> None:
    """One row of the faults table: the fault, what was lost, seconds until all was scanned."""
    target = os.environ.get(REPORT_ENV)
    if not target:
        return
    row = {"fault": fault, "lost": lost, "recovered_s": round(recovered_s, 1), "detail": detail}
    with Path(target).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
