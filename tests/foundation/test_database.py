"""Database plumbing: migrations match the models, times stay UTC, errors hide passwords."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from store import db
from store.model import Host


def test_migrations_create_exactly_the_models(database_url: str) -> None:
    db.upgrade(database_url)
    db.upgrade(database_url)  # a second upgrade is a no-op
    assert db.current_revision(database_url) == db.head_revision() == db.HEAD_REVISION
    engine = sa.create_engine(db.sync_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert differences == []


async def test_times_are_stored_and_read_as_utc(database: db.Database) -> None:
    london_summer = timezone(timedelta(hours=1))
    seen = datetime(2026, 7, 1, 9, 30, tzinfo=london_summer)
    async with database.write() as session:
        session.add(
            Host(
                hostname="pc01", port=5985, transport="winrm", first_seen_at=seen, last_seen_at=seen
            )
        )
    async with database.read() as session:
        host = (await session.execute(sa.select(Host))).scalar_one()
    assert host.first_seen_at == seen
    assert host.first_seen_at.tzinfo is UTC


async def test_naive_times_are_refused(database: db.Database) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        async with database.write() as session:
            session.add(
                Host(
                    hostname="pc01",
                    port=5985,
                    transport="winrm",
                    first_seen_at=datetime(2026, 1, 1),
                    last_seen_at=datetime(2026, 1, 1),
                )
            )


def test_urls_pick_the_right_drivers() -> None:
    assert db.async_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert db.async_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert db.sync_url("postgresql+psycopg://u@h/d").drivername == "postgresql+psycopg"
    with pytest.raises(db.DatabaseError, match="unsupported database"):
        db.async_url("mysql://u@h/d")


def test_errors_never_show_the_password() -> None:
    url = "postgresql://cmscan:s3cret-pw@127.0.0.1:1/cmscan"
    assert "s3cret-pw" not in db.redact(url)
    with pytest.raises(db.DatabaseError) as caught:
        db.upgrade(url)
    assert "s3cret-pw" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


def test_missing_sqlite_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(db.DatabaseError, match=r"directory .*absent does not exist"):
        db.upgrade(f"sqlite:///{tmp_path / 'absent' / 'cmscan.db'}")


async def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    db.upgrade(sqlite_url)
    database = db.Database(sqlite_url)
    try:
        async with database.read() as session:
            mode = (await session.execute(sa.text("PRAGMA journal_mode"))).scalar_one()
        assert mode == "wal"
    finally:
        await database.dispose()


@pytest.mark.timeout(90)  # without the lock, concurrent upgrades block each other for good
def test_replicas_upgrading_an_empty_postgresql_at_once_do_not_race(postgres_url: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(db.upgrade, postgres_url) for _ in range(4)]:
            future.result()
    assert db.current_revision(postgres_url) == db.head_revision()
