"""Fixtures: the seeded database (SQLite, or both backends) and the app served on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from store import db
from tests.exporters.live import live_server
from tests.exporters.seed import NOW, seed, settings


def seed_database(url: str) -> None:
    db.upgrade(url)

    async def write() -> None:
        database = db.Database(url)
        try:
            await seed(database)
        finally:
            await database.dispose()

    asyncio.run(write())


@pytest.fixture
def seeded_sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'seeded.db'}"
    seed_database(url)
    return url


@pytest.fixture
def seeded_url(database_url: str) -> str:
    """The seeded fleet on SQLite and on PostgreSQL (tests taking it run twice)."""
    seed_database(database_url)
    return database_url


@pytest.fixture
def api(seeded_sqlite: str) -> Iterator[str]:
    """Base URL of the app over the seeded SQLite database, with two tokens configured."""
    with live_server(settings(seeded_sqlite), clock=lambda: NOW) as base:
        yield base
