"""Shared fixtures: database URLs for both backends, and throwaway PostgreSQL databases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from store import db
from tests.support import throwaway_postgres_database

pytest_plugins = ["tests.fleet"]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cmscan.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with throwaway_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that takes this runs twice: against SQLite and against a real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cmscan.db'}"
    else:
        with throwaway_postgres_database() as url:
            yield url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[db.Database]:
    """A migrated database on both backends, disposed of afterwards."""
    db.upgrade(database_url)
    database = db.Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()
