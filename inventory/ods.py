"""NHS ODS epraccur.csv (GP practices): practice names and the practice -> CCG mapping."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from inventory.org_codes import is_code
from inventory.problems import Inventory, Problem, SourcedHost
from inventory.textfile import read_text

# NHS Digital's epraccur.csv has no header row and 27 columns; these are 1-based column numbers.
COL_CODE, COL_NAME, COL_GEOGRAPHY, COL_STATUS, COL_COMMISSIONER, COL_SETTING = 1, 2, 4, 13, 15, 26
MIN_COLUMNS = COL_SETTING
STATUS_NAMES = {"A": "active", "C": "closed", "D": "dormant", "P": "proposed"}


@dataclass(frozen=True, slots=True)
class OdsPractice:
    code: str
    name: str
    status: str  # A, C, D or P
    ccg_code: str | None  # the commissioner (CCG / sub-ICB location)
    icb_code: str | None  # the high level health geography, when it has an ICB's shape
    prescribing_setting: str


@dataclass(slots=True)
class OdsFile:
    practices: dict[str, OdsPractice] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def read_epraccur(path: Path) -> OdsFile:
    """Parse epraccur.csv; rows that are too short or carry no practice code are problems."""
    result = OdsFile()
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    previous_end = 0
    for cells in reader:
        where, previous_end = f"{path}:{previous_end + 1}", reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) < MIN_COLUMNS:
            result.problems.append(
                Problem(
                    where,
                    f"{len(cells)} columns; epraccur.csv rows have 27 (is this the ODS file?)",
                )
            )
            continue
        code = cells[COL_CODE - 1].strip().upper()
        if not is_code("practice", code):
            result.problems.append(Problem(where, f"{code!r} is not an ODS practice code"))
            continue
        commissioner = cells[COL_COMMISSIONER - 1].strip().upper()
        geography = cells[COL_GEOGRAPHY - 1].strip().upper()
        result.practices[code] = OdsPractice(
            code=code,
            name=" ".join(cells[COL_NAME - 1].split()),
            status=cells[COL_STATUS - 1].strip().upper(),
            ccg_code=commissioner if is_code("ccg", commissioner) else None,
            icb_code=geography if is_code("icb", geography) else None,
            prescribing_setting=cells[COL_SETTING - 1].strip(),
        )
    if not result.practices and not result.problems:
        result.problems.append(Problem(f"{path}:1", "no practices in the file"))
    return result


def apply_ods(inventory: Inventory, ods: OdsFile, *, source: str) -> None:
    """Fill each host's CCG and ICB from its practice, and report closed or unknown practices."""
    counts: Counter[str] = Counter()
    enriched: list[SourcedHost] = []
    for host in inventory.hosts:
        spec = host.spec
        practice = ods.practices.get(spec.practice_code or "")
        if practice is None:
            enriched.append(host)
            continue
        counts[practice.code] += 1
        updates: dict[str, str] = {}
        if practice.ccg_code and spec.ccg_code is None:
            updates["ccg_code"] = practice.ccg_code
        elif practice.ccg_code and spec.ccg_code != practice.ccg_code:
            inventory.problems.append(
                Problem(
                    host.where,
                    f"CCG {spec.ccg_code} differs from {practice.ccg_code}, the commissioner of"
                    f" {practice.code} in {source}; keeping {spec.ccg_code}",
                    "warning",
                )
            )
        if practice.icb_code and spec.icb_code is None:
            updates["icb_code"] = practice.icb_code
        enriched.append(
            SourcedHost(spec.model_copy(update=updates), host.where) if updates else host
        )
    inventory.hosts = enriched
    for code in sorted({h.spec.practice_code for h in inventory.hosts if h.spec.practice_code}):
        if code not in ods.practices:
            inventory.problems.append(
                Problem(source, f"practice {code} is not in {source}", "warning")
            )
    for code, hosts in sorted(counts.items()):
        practice = ods.practices[code]
        if practice.status in ("C", "D"):
            state = STATUS_NAMES[practice.status]
            inventory.problems.append(
                Problem(
                    source,
                    f"practice {code} ({practice.name}) is {state} in ODS;"
                    f" {hosts} host(s) are inventoried there",
                    "warning",
                )
            )
