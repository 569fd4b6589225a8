"""Care Identity Management "Users report" CSV: smartcard holders, organisations, activity codes."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from inventory.problems import Findings, Problem
from inventory.textfile import read_text

# Each column cmscan reads, with the headers CIM exports and RAs' spreadsheets give it, as
# _key() normalises them.
_NAMES = {
    "user_id": "user id,userid,uuid,user uuid,smartcard uuid,cis uuid",
    "name": "name,full name,user name,display name",
    "surname": "surname,last name,family name",
    "forename": "forename,forenames,first name,given name",
    "organisation": "organisation,organisation code,organisation ods code,ods code,org,org code",
    "role_code": "role,role code,rbac code,job role code",
    "activity_codes": "activity codes,activity code,activities,activity",
}
COLUMN_KEYS: tuple[str, ...] = tuple(_NAMES)
REQUIRED = ("user_id", "organisation", "activity_codes")
LABELS = {key: key.replace("_", " ").replace("user id", "user ID") for key in COLUMN_KEYS}
ALIASES = {alias: key for key, names in _NAMES.items() for alias in names.split(",")}
# Descriptions exports put beside the codes: not codes, and too usual to warn about.
IGNORED = frozenset(
    ("organisation name", "role name", "job role name", "activity name", "activity names")
)

_USER_ID = re.compile(r"[0-9]{12}")
# What Excel writes for a 12-digit ID in a column it took for numbers, in either locale.
_EXCEL_NUMBER = re.compile(r"[0-9]+(?:[.,][0-9]+)?E\+?[0-9]+|[0-9]+[.,]0+", re.IGNORECASE)
_ODS = re.compile(r"[A-Z0-9]{3,6}")  # practice A81001, trust RXH, CCG 00K, PCN U12345
_ACTIVITY = re.compile(r"B[0-9]{4}")
_SPACE_IN_CODE = re.compile(r"\s+(?=[0-9])")  # "B 0360": only a letter starts a new code
_CODE_SEPARATORS = re.compile(r"[;,|\s]+")


@dataclass(frozen=True, slots=True)
class UserGrant:
    """One user at one organisation with the activity codes they hold there."""

    user_id: str
    name: str
    org_code: str
    codes: frozenset[str]  # empty for a user at the organisation who holds no codes there
    where: str  # file:line of the first row naming this user at this organisation


@dataclass(slots=True)
class UsersReport(Findings):
    """What a report held: one grant per (user, organisation), and every problem found."""

    grants: list[UserGrant] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rows: int = 0
    duplicates: int = 0  # rows that added nothing new to their user's grant at that organisation

    @property
    def users(self) -> int:
        return len({grant.user_id for grant in self.grants})


@dataclass(slots=True)
class _Layout:
    index: dict[str, int]  # column key -> cell position
    titles: dict[str, str]  # column key -> the header as written, for messages
    width: int


@dataclass(slots=True)
class _Merged:
    # (user, organisation) -> (where first named, codes), in the file's order.
    found: dict[tuple[str, str], tuple[str, set[str]]] = field(default_factory=dict)
    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # user -> (name, where)
    renamed: set[str] = field(default_factory=set)

    def add(self, row: tuple[str, str, str, set[str]], where: str, report: UsersReport) -> None:
        user, name, org, codes = row
        first, known = self.found.setdefault((user, org), (where, set()))
        if first != where and codes <= known:
            report.duplicates += 1
        known |= codes  # one code per row: a user's rows at an organisation add up
        if not name:
            return  # a blank name cell says nothing about the user's name
        earlier, earlier_where = self.names.setdefault(user, (name, where))
        if earlier != name and user not in self.renamed:
            self.renamed.add(user)
            line = earlier_where.rpartition(":")[2]
            message = f"user {user}'s name differs from line {line}'s; keeping the first"
            report.problems.append(Problem(where, message, "warning"))

    def grants(self) -> list[UserGrant]:
        return [
            UserGrant(user, self.names.get(user, ("", ""))[0], org, frozenset(codes), where)
            for (user, org), (where, codes) in self.found.items()
        ]


def read_users_report(path: Path, *, columns: Mapping[str, str] | None = None) -> UsersReport:
    """Problems are collected, never raised, except InventoryFileError for an unreadable file."""
    columns = columns or {}
    known = _known_headers(columns)
    text = read_text(path)
    report, merged = UsersReport(), _Merged()
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = _delimiter(first_line, known)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    layout: _Layout | None = None
    previous_end = 0
    try:
        for cells in reader:
            start, previous_end = previous_end + 1, reader.line_num
            where = f"{path}:{start}"
            if not any(cell.strip() for cell in cells):
                continue
            if layout is None:
                layout = _header(cells, known, columns, where, report)
                if layout is None:
                    return report
                continue
            report.rows += 1
            if len(cells) > layout.width:
                found = f"{len(cells)} cells but the header has {layout.width}"
                report.problems.append(Problem(where, f"{found}; is a {delimiter!r} unquoted?"))
                continue
            if (row := _row(cells, layout, where, report)) is not None:
                merged.add(row, where, report)
    except csv.Error as exc:  # a quote never closed swallows the rest of the file into a cell
        report.problems.append(Problem(f"{path}:{previous_end + 1}", f"unreadable CSV: {exc}"))
    if layout is None and not report.problems:
        report.problems.append(Problem(f"{path}:1", "the file is empty: no header row"))
    report.grants = merged.grants()
    return report


def _key(header: str) -> str:
    words = header.strip().lower().replace("_", " ").replace("-", " ").split()
    return " ".join(words).replace("organization", "organisation")


def _known_headers(columns: Mapping[str, str]) -> dict[str, str]:
    """Normalised header -> column key; a column named in cmscan.toml replaces its aliases."""
    known = {header: key for header, key in ALIASES.items() if key not in columns}
    mapped: dict[str, str] = {}
    for key, header in columns.items():
        if key not in COLUMN_KEYS:
            raise ValueError(f"{key!r} is not a users report column: {', '.join(COLUMN_KEYS)}")
        if not _key(header) or _key(header) in mapped:
            raise ValueError(f"users report column {key!r}: header {header!r} is blank or taken")
        mapped[_key(header)] = key
    return known | mapped


def _delimiter(first_line: str, known: Mapping[str, str]) -> str:
    # Excel writes ';' where ',' is the decimal separator, tabs for "Unicode text"; headers
    # may be quoted, so each candidate is parsed as CSV. Ties go to the comma.
    def recognised(delimiter: str) -> int:
        cells = next(csv.reader([first_line], delimiter=delimiter), [])
        return len({known[_key(c)] for c in cells if _key(c) in known})

    return max((",", ";", "\t"), key=recognised)


def _header(
    cells: list[str],
    known: Mapping[str, str],
    columns: Mapping[str, str],
    where: str,
    report: UsersReport,
) -> _Layout | None:
    layout, problems, unknown = _Layout({}, {}, len(cells)), [], []
    for position, cell in enumerate(cells):
        key = known.get(_key(cell))
        if key is None:
            if _key(cell) and _key(cell) not in IGNORED:
                unknown.append(cell.strip())
        elif key in layout.index:
            first = layout.titles[key]
            problems.append(f"columns {first!r} and {cell.strip()!r} both hold the {LABELS[key]}")
        else:
            layout.index[key], layout.titles[key] = position, cell.strip()
    for key in (key for key in REQUIRED if key not in layout.index):
        if key in columns:
            problems.append(f"no {LABELS[key]} column headed {columns[key]!r}, as cmscan.toml says")
        else:
            problems.append(
                f"no {LABELS[key]} column; if its header is unusual, name it in"
                f' cmscan.toml: [access.columns] {key} = "..."'
            )
    report.problems.extend(Problem(where, problem) for problem in problems)
    if unknown and not problems:
        message = f"ignoring unknown column(s): {', '.join(unknown)}"
        report.problems.append(Problem(where, message, "warning"))
    return None if problems else layout


def _row(
    cells: list[str], layout: _Layout, where: str, report: UsersReport
) -> tuple[str, str, str, set[str]] | None:
    """(user ID, name, organisation, codes) of a good row; a bad one's problems, and None."""
    cell = {k: cells[i].strip() if i < len(cells) else "" for k, i in layout.index.items()}
    title, problems = layout.titles, []
    user_id = "".join(cell["user_id"].split())
    if not _USER_ID.fullmatch(user_id):
        problems.append(f"{title['user_id']}: {_user_id_problem(cell['user_id'])}")
    org = cell["organisation"].upper()
    if not _ODS.fullmatch(org):
        problems.append(
            f"{title['organisation']}: {cell['organisation']!r} is not an ODS code: expected"
            " 3 to 6 letters or digits, e.g. A81001 or RXH"
        )
    codes = set()
    for token in _CODE_SEPARATORS.split(_SPACE_IN_CODE.sub("", cell["activity_codes"].upper())):
        if _ACTIVITY.fullmatch(token):
            codes.add(token)
        elif token:
            problems.append(
                f"{title['activity_codes']}: {token!r} is not an activity code: expected B and"
                " 4 digits, e.g. B0360"
            )
    report.problems.extend(Problem(where, problem) for problem in problems)
    name = cell.get("name") or f"{cell.get('forename', '')} {cell.get('surname', '')}"
    return None if problems else (user_id, " ".join(name.split()), org, codes)


def _user_id_problem(value: str) -> str:
    if not value:
        return "the cell is empty; every row needs the user's 12-digit ID"
    digits = "".join(value.split())
    if _EXCEL_NUMBER.fullmatch(digits):
        return f"{value!r} is a number Excel has rewritten; format the column as text, export again"
    if re.fullmatch(r"[0-9]{1,11}", digits):
        return f"{value!r} is {len(digits)} digits, not 12; has Excel dropped leading zeros?"
    return f"{value!r} is not a user ID: expected 12 digits"
