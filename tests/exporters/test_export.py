"""The unpatched export: selection, columns, RFC 4180 round trip, formula neutralisation, JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col

from exporters.csv import COLUMNS, ExportError, ExportOptions, export_unpatched
from exporters.spreadsheet_safety import _FORMULA_STARTS
from store import db
from store.model import Host
from tests.exporters.seed import HOSTILE_PRACTICE, HOSTILE_SITE, NOW


async def _export(url: str, **options: Any) -> bytes:
    database = db.Database(url)
    try:
        chunks = [c async for c in export_unpatched(database, ExportOptions(**options), now=NOW)]
    finally:
        await database.dispose()
    return b"".join(chunks)


def _rows(body: bytes) -> list[dict[str, str]]:
    text = body.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def test_csv_round_trips_and_neutralises_formulas_from_the_inventory(
    seeded_url: str,
) -> None:
    body = await _export(seeded_url, include_unreachable=True, stale_days=7)
    assert body.startswith(b"hostname,address,site,")
    assert b"\n" not in body.replace(b"\r\n", b"")  # CRLF line ends, no bare LF
    parsed = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    assert tuple(parsed[0]) == COLUMNS
    assert all(len(row) == len(COLUMNS) for row in parsed)
    for row in parsed[1:]:
        for cell in row:
            assert not cell.startswith(_FORMULA_STARTS), cell
    rows = {r["hostname"]: r for r in _rows(body)}
    # Only the first character matters to a spreadsheet; the rest of the text is kept.
    assert rows["pc04.a81002.nhs.uk"]["site"] == "'-Branch"
    assert rows["pc05.a81002.nhs.uk"]["site"] == "'@Branch"
    assert rows["pc04.a81002.nhs.uk"]["practice_name"] == "'" + HOSTILE_PRACTICE
    assert rows["pc02.a81001.nhs.uk"]["practice_name"] == "Riverside Surgery"
    assert set(rows) == {
        "pc02.a81001.nhs.uk",
        "pc03.a81001.nhs.uk",
        "pc04.a81002.nhs.uk",
        "pc05.a81002.nhs.uk",
        "pc07.b82001.nhs.uk",
        "pc08.b82001.nhs.uk",
        "pc11.b82001.nhs.uk",  # compliant, but its last good result is 8 days old
    }


async def test_hostile_cells_at_the_start_of_a_row_are_neutralised(seeded_sqlite: str) -> None:
    database = db.Database(seeded_sqlite)
    try:
        async with database.write() as session:
            await session.execute(
                sa.update(Host)
                .where(col(Host.hostname) == "pc02.a81001.nhs.uk")
                .values(site=HOSTILE_SITE, address="=1+1")
            )
    finally:
        await database.dispose()
    rows = {r["hostname"]: r for r in _rows(await _export(seeded_sqlite))}
    assert rows["pc02.a81001.nhs.uk"]["site"] == "'" + HOSTILE_SITE
    assert rows["pc02.a81001.nhs.uk"]["address"] == "'=1+1"


async def test_columns_carry_rules_titles_remediation_versions_and_waivers(
    seeded_sqlite: str,
) -> None:
    rows = {r["hostname"]: r for r in _rows(await _export(seeded_sqlite, include_unreachable=True))}
    old = rows["pc02.a81001.nhs.uk"]
    assert old["status"] == "noncompliant"
    assert old["failing_rules"] == "cm-version"
    assert old["failing_titles"] == "NHS Credential Management is 1.4.2.0 or later"
    assert old["remediation"].startswith("cm-version: ")
    assert old["cm_version"] == "1.3.1.0"
    assert old["middleware"] == "Oberthur Technologies Authentic Web Pack"
    assert old["middleware_version"] == "5.2.0.1"
    assert old["practice_code"] == "A81001"
    assert (old["pcn"], old["ccg"], old["icb"]) == ("U12345", "00K", "QHM")
    assert old["last_scan"].endswith("Z")
    assert old["days_unreachable"] == ""
    bare = rows["pc03.a81001.nhs.uk"]
    assert bare["failing_rules"] == "cm-installed"
    assert bare["waived_rules"] == "dotnet-48"
    assert bare["cm_version"] == ""
    assert rows["pc08.b82001.nhs.uk"]["identity_agent_version"] == "2.3.2.0"
    gone = rows["pc04.a81002.nhs.uk"]
    assert gone["status"] == "unreachable"
    assert gone["days_unreachable"] == "10"
    assert gone["failing_rules"] == "dotnet-48"  # from its last good facts
    never = rows["pc05.a81002.nhs.uk"]
    assert never["days_unreachable"] == "30"  # never reached: counted from when it was listed
    assert never["last_success"] == ""


async def test_selection_by_ccg_and_practice(seeded_sqlite: str) -> None:
    north = _rows(await _export(seeded_sqlite, ccg="00k"))
    assert [r["hostname"] for r in north] == ["pc02.a81001.nhs.uk", "pc03.a81001.nhs.uk"]
    practice = _rows(await _export(seeded_sqlite, practice="B82001", include_unreachable=True))
    assert [r["hostname"] for r in practice] == ["pc07.b82001.nhs.uk", "pc08.b82001.nhs.uk"]
    assert _rows(await _export(seeded_sqlite, ccg="99Z")) == []


async def test_excel_gets_a_byte_order_mark(seeded_sqlite: str) -> None:
    body = await _export(seeded_sqlite, excel=True)
    assert body.startswith(b"\xef\xbb\xbfhostname,")
    assert body.count(b"\xef\xbb\xbf") == 1


async def test_json_keeps_lists_and_text_as_they_are(seeded_sqlite: str) -> None:
    body = await _export(seeded_sqlite, format="json", include_unreachable=True)
    rows = {r["hostname"]: r for r in json.loads(body)}
    assert rows["pc03.a81001.nhs.uk"]["failing_rules"] == ["cm-installed"]
    assert rows["pc03.a81001.nhs.uk"]["waived_rules"] == ["dotnet-48"]
    assert rows["pc04.a81002.nhs.uk"]["practice_name"] == HOSTILE_PRACTICE  # JSON is not a sheet
    assert rows["pc04.a81002.nhs.uk"]["days_unreachable"] == 10
    assert set(next(iter(rows.values()))) == set(COLUMNS)
    assert json.loads(await _export(seeded_sqlite, format="json", ccg="99Z")) == []


def test_bad_options_are_refused() -> None:
    with pytest.raises(ExportError, match="stale days"):
        ExportOptions(stale_days=-1)
    with pytest.raises(ExportError, match="is not an organisation code"):
        ExportOptions(ccg="00K\x00")
    with pytest.raises(ExportError, match="format"):
        ExportOptions(format="xlsx")  # type: ignore[arg-type]
