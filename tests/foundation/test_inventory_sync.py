"""Inventory import into the database, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from store import db
from store.hosts import HostLookupError, find_host, list_hosts
from store.inventory_import import import_inventory
from store.model import Host, HostState, Organisation

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def inventory_file(tmp_path: Path, *rows: str, name: str = "hosts.csv") -> Path:
    path = tmp_path / name
    path.write_text("hostname,address,practice_code,ccg_code,site\n" + "\n".join(rows) + "\n")
    return path


async def snapshot(database: db.Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables an import touches, to prove a refused import changed nothing."""
    async with database.read() as session:
        tables: dict[str, list[tuple[Any, ...]]] = {}
        for model in (Host, HostState, Organisation):
            rows = (await session.execute(sa.select(model.__table__))).all()  # type: ignore[attr-defined]
            tables[model.__tablename__] = sorted(tuple(r) for r in rows)  # type: ignore[attr-defined]
        return tables


async def test_import_adds_hosts_with_state_and_organisations(
    database: db.Database, tmp_path: Path
) -> None:
    path = inventory_file(tmp_path, "PC01,10.0.0.1,A81001,00K,Main", "pc02,,A81001,00K,")
    report = await import_inventory(database, path=path, fmt="csv", now=T0)
    assert report.written
    assert report.plan is not None
    assert [s.hostname for s in report.plan.added] == ["pc01", "pc02"]
    async with database.read() as session:
        rows = await list_hosts(session)
        assert [(r.host.hostname, r.status) for r in rows] == [
            ("pc01", "unknown"),
            ("pc02", "unknown"),
        ]
        assert rows[0].host.first_seen_at == T0
        assert rows[0].host.source == "hosts.csv"
        states = (await session.execute(sa.select(HostState))).scalars().all()
        assert {s.next_due_at for s in states} == {T0}  # never scanned: due at once
        orgs = (await session.execute(sa.select(Organisation))).scalars().all()
        assert {(o.kind, o.code) for o in orgs} == {("practice", "A81001"), ("ccg", "00K")}


async def test_reimport_updates_retires_and_revives(database: db.Database, tmp_path: Path) -> None:
    first = inventory_file(
        tmp_path, "pc01,10.0.0.1,A81001,00K,Main", "pc02,,A81001,00K,", "pc03,,,,"
    )
    await import_inventory(database, path=first, fmt="csv", now=T0)

    second = inventory_file(tmp_path, "pc01,10.0.0.9,A81001,00K,Main", "pc03,,,,", name="v2.csv")
    report = await import_inventory(database, path=second, fmt="csv", now=T0 + timedelta(days=1))
    assert report.plan is not None
    assert [
        (h, fields) for _, h, fields in [(i, s.hostname, f) for i, s, f in report.plan.updated]
    ] == [("pc01", ["address"])]
    assert [name for _, name in report.plan.retired] == ["pc02"]
    assert report.plan.unchanged == 1

    async with database.read() as session:
        active = [r.host.hostname for r in await list_hosts(session)]
        everything = [r.host.hostname for r in await list_hosts(session, include_retired=True)]
    assert active == ["pc01", "pc03"]
    assert everything == ["pc01", "pc02", "pc03"]  # retired, not deleted: history is kept

    third = inventory_file(
        tmp_path, "pc01,10.0.0.9,A81001,00K,Main", "PC02,,A81001,00K,", "pc03,,,,", name="v3.csv"
    )
    report = await import_inventory(database, path=third, fmt="csv", now=T0 + timedelta(days=2))
    assert report.plan is not None
    assert [name for _, name in report.plan.revived] == ["pc02"]
    async with database.read() as session:
        host = await find_host(session, name="PC02")
        assert host is not None
        assert host.retired_at is None
        assert host.first_seen_at == T0


async def test_partial_import_retires_nothing(database: db.Database, tmp_path: Path) -> None:
    await import_inventory(
        database, path=inventory_file(tmp_path, "pc01,,,,", "pc02,,,,"), fmt="csv", now=T0
    )
    report = await import_inventory(
        database,
        path=inventory_file(tmp_path, "pc03,,,,", name="more.csv"),
        fmt="csv",
        retire_missing=False,
        now=T0,
    )
    assert report.plan is not None
    assert report.plan.retired == []
    async with database.read() as session:
        assert len(await list_hosts(session)) == 3


async def test_file_with_errors_changes_nothing(database: db.Database, tmp_path: Path) -> None:
    await import_inventory(
        database, path=inventory_file(tmp_path, "pc01,10.0.0.1,A81001,00K,"), fmt="csv", now=T0
    )
    before = await snapshot(database)
    bad = inventory_file(
        tmp_path, "pc01,10.0.0.2,A81001,00K,", "pc02,not-an-ip,,,", "pc03,,X,,", name="bad.csv"
    )
    report = await import_inventory(database, path=bad, fmt="csv", now=T0 + timedelta(hours=1))
    assert not report.written
    assert report.plan is None
    assert [p.where for p in report.inventory.errors] == [f"{bad}:3", f"{bad}:4"]
    assert await snapshot(database) == before


async def test_skip_invalid_imports_good_rows_and_keeps_mentioned_hosts(
    database: db.Database, tmp_path: Path
) -> None:
    await import_inventory(
        database, path=inventory_file(tmp_path, "pc01,,,,", "pc02,,,,"), fmt="csv", now=T0
    )
    # pc02's row is invalid now, but it is still listed: it must not be retired.
    path = inventory_file(tmp_path, "pc01,,,,", "pc02,10.0.0.300,,,", "pc03,,,,", name="v2.csv")
    report = await import_inventory(database, path=path, fmt="csv", skip_invalid=True, now=T0)
    assert report.written
    assert report.plan is not None
    assert report.plan.retired == []
    assert [s.hostname for s in report.plan.added] == ["pc03"]


async def test_skip_invalid_keeps_hosts_whose_rows_are_duplicates(
    database: db.Database, tmp_path: Path
) -> None:
    await import_inventory(
        database, path=inventory_file(tmp_path, "pc01,10.0.0.1,,,", "pc02,,,,"), fmt="csv", now=T0
    )
    # pc02 now clashes with pc01's address: its row is invalid but it is still listed.
    path = inventory_file(tmp_path, "pc01,10.0.0.1,,,", "pc02,10.0.0.1,,,", name="v2.csv")
    report = await import_inventory(database, path=path, fmt="csv", skip_invalid=True, now=T0)
    assert report.written
    assert report.plan is not None
    assert report.plan.retired == []


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("hosts.csv", "address,site\n10.0.0.1,Main\n"),  # no hostname column
        ("hosts.csv", ""),
        ("hosts.yaml", "hosts: [pc01\n"),  # a syntax error: not one host could be read
    ],
)
async def test_skip_invalid_never_imports_an_unreadable_file(
    database: db.Database, tmp_path: Path, name: str, text: str
) -> None:
    await import_inventory(
        database, path=inventory_file(tmp_path, "pc01,,,,", "pc02,,,,"), fmt="csv", now=T0
    )
    before = await snapshot(database)
    path = tmp_path / name
    path.write_text(text)
    fmt = "yaml" if name.endswith(".yaml") else "csv"
    report = await import_inventory(database, path=path, fmt=fmt, skip_invalid=True, now=T0)
    assert report.plan is None
    assert not report.written
    assert await snapshot(database) == before


async def test_dry_run_writes_nothing(database: db.Database, tmp_path: Path) -> None:
    before = await snapshot(database)
    report = await import_inventory(
        database, path=inventory_file(tmp_path, "pc01,,,,"), fmt="csv", dry_run=True, now=T0
    )
    assert report.plan is not None
    assert len(report.plan.added) == 1
    assert not report.written
    assert await snapshot(database) == before


async def test_retiring_most_of_the_fleet_needs_force(
    database: db.Database, tmp_path: Path
) -> None:
    rows = [f"pc{i:02d},,,," for i in range(20)]
    await import_inventory(database, path=inventory_file(tmp_path, *rows), fmt="csv", now=T0)
    before = await snapshot(database)
    one_ccg = inventory_file(tmp_path, "pc00,,,,", name="one.csv")
    report = await import_inventory(database, path=one_ccg, fmt="csv", now=T0)
    assert report.refused is not None
    assert "would retire 19 of 20 hosts" in report.refused
    assert await snapshot(database) == before
    forced = await import_inventory(database, path=one_ccg, fmt="csv", force=True, now=T0)
    assert forced.written


async def test_ods_names_and_status_reach_organisations(
    database: db.Database, tmp_path: Path
) -> None:
    ods = tmp_path / "epraccur.csv"
    cells = [""] * 27
    cells[0], cells[1], cells[3], cells[12], cells[14], cells[25] = (
        "A81001",
        "THE DENSHAM SURGERY",
        "QHM",
        "A",
        "00K",
        "4",
    )
    ods.write_text(",".join(cells) + "\n")
    path = inventory_file(tmp_path, "pc01,,A81001,,")
    await import_inventory(database, path=path, fmt="csv", ods_path=ods, now=T0)
    async with database.read() as session:
        host = await find_host(session, name="pc01")
        assert host is not None
        assert (host.ccg_code, host.icb_code) == ("00K", "QHM")
        practice = await session.get(Organisation, ("practice", "A81001"))
        assert practice is not None
        assert (practice.name, practice.parent_code, practice.ods_status) == (
            "THE DENSHAM SURGERY",
            "00K",
            "A",
        )


async def test_find_host_by_name_address_and_short_name(
    database: db.Database, tmp_path: Path
) -> None:
    path = inventory_file(
        tmp_path, "pc01.a.nhs.uk,10.0.0.1,,,", "pc01.b.nhs.uk,,,,", "pc02.a.nhs.uk,,,,"
    )
    await import_inventory(database, path=path, fmt="csv", now=T0)
    async with database.read() as session:
        found = await find_host(session, name="PC01.A.NHS.UK")
        assert found is not None
        assert found.hostname == "pc01.a.nhs.uk"
        by_address = await find_host(session, name="10.0.0.1")
        assert by_address is not None
        assert by_address.hostname == "pc01.a.nhs.uk"
        short = await find_host(session, name="pc02")
        assert short is not None
        assert short.hostname == "pc02.a.nhs.uk"
        assert await find_host(session, name="pc99") is None
        with pytest.raises(HostLookupError, match=r"pc01\.a\.nhs\.uk, pc01\.b\.nhs\.uk"):
            await find_host(session, name="pc01")


async def test_hosts_taken_out_of_service_leave_their_pending_rescans(
    database: db.Database, tmp_path: Path
) -> None:
    from store.model import RescanRequest
    from store.rescans import Selector, request_rescan

    path = tmp_path / "hosts.csv"
    path.write_text("hostname,ccg_code\npc01,00K\npc02,00K\npc03,00K\n")
    await import_inventory(database, path=path, fmt="csv", now=T0)
    async with database.write() as session:
        request = await request_rescan(
            session, selector=Selector(ccg="00K"), requested_by="it", now=T0
        )
        request_id = request.id
    # pc02 and pc03 are retired (missing): neither will be scanned, so the request must stop
    # waiting for them, or `rescan --wait` would wait until its timeout.
    path.write_text("hostname,ccg_code\npc01,00K\n")
    await import_inventory(database, path=path, fmt="csv", now=T0 + timedelta(hours=1))
    async with database.read() as session:
        left = await session.get(RescanRequest, request_id)
        assert left is not None
        assert (left.host_count, left.state) == (1, "pending")
        waiting = (
            await session.execute(
                sa.select(Host.hostname)
                .join(HostState, HostState.host_id == Host.id)
                .where(HostState.rescan_request_id == request_id)
            )
        ).scalars()
        assert list(waiting) == ["pc01"]
    path.write_text("hostname,ccg_code\npc04,00K\n")
    report = await import_inventory(
        database, path=path, fmt="csv", now=T0 + timedelta(hours=2), force=True
    )
    assert report.written
    async with database.read() as session:
        ended = await session.get(RescanRequest, request_id)
        assert ended is not None
        assert (ended.host_count, ended.state) == (0, "done")
