"""Importing users reports on both databases: counts per the rule, history, all or nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from engine.access import import_access, regrade_access
from exporters.access_gaps import GapOptions, export_access_gaps
from policy import default_policy, load_policy_text
from store import db
from store.access import purge_access
from store.model import AccessChange, AccessGrant, AccessImport, AccessUser, Organisation
from store.reports.access import group_access, practice_access
from tests.access.reports import BAD_ROWS, HOSTILE_FORENAME, ROWS, WITHOUT_CODE, write_report
from tests.exporters.seed import NOW


async def _import(url: str, path: Path, **options: object) -> object:
    database = db.Database(url)
    try:
        return await import_access(database, path=path, now=NOW, **options)  # type: ignore[arg-type]
    finally:
        await database.dispose()


async def _count(url: str, table: type) -> int:
    database = db.Database(url)
    try:
        async with database.read() as session:
            return int(
                (await session.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
            )
    finally:
        await database.dispose()


async def test_counts_per_practice_follow_the_rule(seeded_url: str, tmp_path: Path) -> None:
    result = await _import(seeded_url, write_report(tmp_path / "users.csv"))
    assert result.written
    assert result.report.duplicates == 1
    assert result.not_in_inventory == {"RXH": 1}
    assert result.plan.gained == 4  # Anna twice, Cara, Gus (at RXH, not shown per practice)
    database = db.Database(seeded_url)
    try:
        async with database.read() as session:
            practices = {p.practice_code: p for p in await practice_access(session)}
            ccgs = await group_access(session, levels=("ccg",))
            gaps = [
                chunk async for chunk in export_access_gaps(database, GapOptions(format="json"))
            ]
    finally:
        await database.dispose()
    figures = {
        code: (
            p.users_with_access,
            p.users_missing_codes,
            p.machines_ready,
            p.machines,
            p.readiness,
        )
        for code, p in practices.items()
    }
    assert figures == {
        "A81001": (2, 1, 1, 3, "ready"),
        "A81002": (1, 1, 0, 3, "no_machines"),
        "B82001": (0, 2, 1, 3, "no_users"),
    }
    north, south = ccgs[("00K",)], ccgs[("15N",)]
    # Anna opens two practices of 00K and counts once.
    assert (north.users_with_access, north.users_missing_codes, north.practices_ready) == (2, 2, 1)
    assert north.practices["no_machines"] == 1
    assert (south.users_with_access, south.users_missing_codes) == (0, 2)
    assert south.practices["no_users"] == 1
    rows = json.loads(b"".join(gaps))
    assert {(r["user_id"], r["practice_code"]) for r in rows} == WITHOUT_CODE
    eve = next(r for r in rows if r["user_id"] == "555555555505")
    assert eve["codes_held"] == ["B8006"]  # implied by B0360, but grants nothing alone
    assert eve["codes_that_grant_access"] == ["B0258", "B0360", "B0560", "B0945"]


async def test_the_gaps_csv_is_safe_for_spreadsheets(seeded_url: str, tmp_path: Path) -> None:
    await _import(seeded_url, write_report(tmp_path / "users.csv"))
    database = db.Database(seeded_url)
    try:
        options = GapOptions(practice="b82001", excel=True)
        text = b"".join([c async for c in export_access_gaps(database, options)])
    finally:
        await database.dispose()
    assert text.startswith(b"\xef\xbb\xbf")
    lines = text.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("user_id,name,practice_code")
    assert len(lines) == 3  # Dev and Eve at B82001
    assert f"'{HOSTILE_FORENAME}" not in text.decode()  # the name starts with Shah, not =
    assert all(not cell.startswith("=") for line in lines for cell in line.split(","))


async def test_a_report_with_bad_rows_stores_nothing(seeded_url: str, tmp_path: Path) -> None:
    await _import(seeded_url, write_report(tmp_path / "good.csv"))
    before = await _count(seeded_url, AccessGrant)
    result = await _import(seeded_url, write_report(tmp_path / "bad.csv", BAD_ROWS))
    assert not result.written
    lines = sorted(int(p.where.rsplit(":", 1)[1]) for p in result.report.errors)
    assert lines == [3, 4, 5]
    assert await _count(seeded_url, AccessGrant) == before
    assert await _count(seeded_url, AccessImport) == 1


async def test_a_dry_run_writes_nothing(seeded_url: str, tmp_path: Path) -> None:
    result = await _import(seeded_url, write_report(tmp_path / "users.csv"), dry_run=True)
    assert not result.written
    assert result.plan.gained == 4
    assert await _count(seeded_url, AccessUser) == 0
    assert await _count(seeded_url, AccessChange) == 0


async def test_a_new_report_replaces_the_old_and_history_says_who_changed(
    seeded_url: str, tmp_path: Path
) -> None:
    await _import(seeded_url, write_report(tmp_path / "first.csv"))
    # Ben gets a code, Anna leaves, Cara's codes change without changing her access.
    later = [
        ROWS[0],
        "555555555502;Jones;Ben;A81001;R8008;B0264 B0560",
        "555555555503;Patel;Cara;A81001;R0260;B0945",
        *ROWS[6:],
    ]
    database = db.Database(seeded_url)
    try:
        result = await import_access(
            database, path=write_report(tmp_path / "second.csv", later), now=NOW + timedelta(days=7)
        )
        assert (result.plan.gained, result.plan.lost) == (1, 2)
        assert result.plan.gone_users == ["555555555501"]
        async with database.read() as session:
            changes = (
                await session.execute(
                    sa.select(
                        AccessChange.user_id, AccessChange.org_code, AccessChange.gained
                    ).where(AccessChange.at > NOW)
                )
            ).all()
            ben = await session.get(AccessGrant, ("555555555502", "A81001"))
            anna = await session.get(AccessUser, "555555555501")
    finally:
        await database.dispose()
    assert sorted(changes) == [
        ("555555555501", "A81001", False),
        ("555555555501", "A81002", False),
        ("555555555502", "A81001", True),
    ]
    assert ben is not None
    assert ben.has_access
    assert ben.codes == ["B0264", "B0560"]
    assert ben.access_since == NOW + timedelta(days=7)
    assert anna is None  # no longer in the RA's records: not kept


async def test_a_policy_with_another_rule_regrades_the_stored_codes(
    seeded_url: str, tmp_path: Path
) -> None:
    await _import(seeded_url, write_report(tmp_path / "users.csv"))
    text = default_policy().source.replace(
        "    - B0560   # Perform Patient Admin\n", "    - B0560\n    - B0264\n"
    )
    assert text != default_policy().source
    wider = load_policy_text(text, "wider.yaml")
    database = db.Database(seeded_url)
    try:
        dry = await regrade_access(database, wider, now=NOW, dry_run=True)
        done = await regrade_access(database, wider, now=NOW + timedelta(hours=1))
        async with database.read() as session:
            practices = {p.practice_code: p for p in await practice_access(session)}
            causes = (
                (await session.execute(sa.select(AccessChange.cause).where(AccessChange.at > NOW)))
                .scalars()
                .all()
            )
    finally:
        await database.dispose()
    assert (dry.gained, dry.lost) == (done.gained, done.lost) == (2, 0)  # Ben and Dev
    assert practices["B82001"].readiness == "ready"
    assert causes == ["policy", "policy"]


async def test_purge_removes_every_user_and_their_history(seeded_url: str, tmp_path: Path) -> None:
    await _import(seeded_url, write_report(tmp_path / "users.csv"))
    database = db.Database(seeded_url)
    try:
        async with database.write() as session:
            purged = await purge_access(session)
    finally:
        await database.dispose()
    assert (purged.users, purged.imports) == (7, 1)
    for table in (AccessUser, AccessGrant, AccessChange, AccessImport):
        assert await _count(seeded_url, table) == 0
    assert await _count(seeded_url, Organisation) == 6  # the rest is untouched


async def test_users_at_practices_closed_in_ods_are_reported(
    seeded_sqlite: str, tmp_path: Path
) -> None:
    database = db.Database(seeded_sqlite)
    try:
        async with database.write() as session:
            await session.execute(
                sa.update(Organisation).where(Organisation.code == "B82001").values(ods_status="C")
            )
    finally:
        await database.dispose()
    result = await _import(seeded_sqlite, write_report(tmp_path / "users.csv"))
    assert result.closed == {"B82001": "C"}
