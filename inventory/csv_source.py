"""Inventory from CSV with a header row, as spreadsheets and CMDB exports write it."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pydantic import ValidationError

from inventory.problems import Inventory, Problem, SourcedHost, field_errors
from inventory.spec import FIELDS, HostSpec
from inventory.textfile import read_text

# Names people give these columns in real exports, mapped to cmscan's.
ALIASES = {
    "host": "hostname",
    "host_name": "hostname",
    "computer": "hostname",
    "computer_name": "hostname",
    "computername": "hostname",
    "fqdn": "hostname",
    "ip": "address",
    "ip_address": "address",
    "practice": "practice_code",
    "ods_code": "practice_code",
    "pcn": "pcn_code",
    "ccg": "ccg_code",
    "sub_icb": "ccg_code",
    "icb": "icb_code",
    "profile": "credential_profile",
    "tag": "tags",
}
# Optional organisation names, kept on the organisation rather than the host.
NAME_COLUMNS = {f"{kind}_name": kind for kind in ("practice", "pcn", "ccg", "icb")}


def _column(header: str) -> str:
    key = "_".join(header.strip().lower().replace("-", " ").split())
    return ALIASES.get(key, key)


def _delimiter(first_line: str) -> str:
    # Excel writes ';' in locales where ',' is the decimal separator, and tabs for "text".
    # Parsed as CSV, not split: CMDB exports quote every header ("Computer Name";"IP").
    for candidate in (",", ";", "\t"):
        cells = next(csv.reader([first_line], delimiter=candidate), [])
        if "hostname" in {_column(c) for c in cells}:
            return candidate
    return ","


def read_csv(path: Path) -> Inventory:
    """Parse an inventory CSV. Problems are collected, never raised, except an unreadable file."""
    text = read_text(path)
    inventory = Inventory()
    name = str(path)
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    header: list[str] | None = None
    previous_end = 0
    for cells in reader:
        start, previous_end = previous_end + 1, reader.line_num
        where = f"{name}:{start}"
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = [_column(c) for c in cells]
            if not _check_header(header, where, inventory):
                return inventory
            continue
        inventory.rows += 1
        if len(cells) > len(header):
            inventory.problems.append(
                Problem(where, f"{len(cells)} fields but the header has {len(header)}")
            )
            inventory.mention(cells[header.index("hostname")])
            continue
        row = dict(zip(header, cells, strict=False))
        _row(row, where, inventory)
    if header is None:
        inventory.problems.append(Problem(f"{name}:1", "the file is empty: no header row"))
    return inventory


def _check_header(header: list[str], where: str, inventory: Inventory) -> bool:
    if "hostname" not in header:
        inventory.problems.append(
            Problem(where, f"no hostname column in the header; columns are {', '.join(FIELDS)}")
        )
        return False
    repeated = sorted({c for c in header if c and header.count(c) > 1})
    if repeated:
        inventory.problems.append(Problem(where, f"repeated column(s): {', '.join(repeated)}"))
        return False
    unknown = [c for c in header if c and c not in FIELDS and c not in NAME_COLUMNS]
    if unknown:
        inventory.problems.append(
            Problem(where, f"ignoring unknown column(s): {', '.join(unknown)}", "warning")
        )
    return True


def _row(row: dict[str, str], where: str, inventory: Inventory) -> None:
    fields = {k: v for k, v in row.items() if k in FIELDS}
    try:
        spec = HostSpec(**fields)
    except ValidationError as exc:
        for field_name, reason in field_errors(exc):
            inventory.problems.append(Problem(where, f"{field_name}: {reason}"))
        inventory.mention(row.get("hostname"))
        return
    inventory.hosts.append(SourcedHost(spec, where))
    for column, kind in NAME_COLUMNS.items():
        org_name = (row.get(column) or "").strip()
        code = getattr(spec, f"{kind}_code")
        if org_name and code:
            known = inventory.org_names.setdefault((kind, code), org_name)
            if known != org_name:
                message = f"{kind} {code} is named {org_name!r} here but {known!r} earlier"
                inventory.problems.append(Problem(where, message, "warning"))
