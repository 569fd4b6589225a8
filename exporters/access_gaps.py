"""The access-gaps export for Registration Authorities: users at a practice without a code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from exporters.chunks import MEDIA_TYPES, ExportStats, encoded
from exporters.csv import ExportError, check_code
from exporters.spreadsheet_safety import neutralise
from policy.access_in_force import rule_in_use
from store import db
from store.policies import get_active_policy
from store.reports.access import AccessGap, access_gaps

COLUMNS = (
    "user_id",
    "name",
    "practice_code",
    "practice_name",
    "ccg",
    "codes_held",
    "codes_that_grant_access",
)
SEPARATOR = "; "


@dataclass(frozen=True, slots=True)
class GapOptions:
    ccg: str | None = None
    practice: str | None = None
    excel: bool = False
    format: Literal["csv", "json"] = "csv"

    def __post_init__(self) -> None:
        check_code("ccg", self.ccg)
        check_code("practice", self.practice)
        if self.format not in MEDIA_TYPES:
            raise ExportError(f"unknown export format {self.format!r}; use csv or json")

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


def record(gap: AccessGap, granting: list[str]) -> dict[str, Any]:
    return {
        "user_id": gap.user_id,
        "name": gap.name,
        "practice_code": gap.practice_code,
        "practice_name": gap.practice_name,
        "ccg": gap.ccg_code,
        "codes_held": sorted(str(code) for code in gap.codes or ()),
        "codes_that_grant_access": granting,
    }


def csv_cells(row: dict[str, Any]) -> list[str]:
    return [
        neutralise(SEPARATOR.join(value) if isinstance(value, list) else value)
        for value in (row[column] for column in COLUMNS)
    ]


async def export_access_gaps(
    database: db.Database, options: GapOptions, *, stats: ExportStats | None = None
) -> AsyncIterator[bytes]:
    """The gaps as chunks of bytes, read in one read transaction as they are written."""
    stats = stats if stats is not None else ExportStats()
    async with database.read() as session:
        granting = rule_in_use(await get_active_policy(session)).rule.granting_codes
        gaps = access_gaps(session, ccg=options.ccg, practice=options.practice)

        rows = (record(gap, granting) async for gap in gaps)
        async for chunk in encoded(
            rows,
            format=options.format,
            header=COLUMNS,
            cells=csv_cells,
            excel=options.excel,
            stats=stats,
        ):
            yield chunk
