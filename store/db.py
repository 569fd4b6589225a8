"""Database access plumbing: URLs, async engines, transactions, and Alembic migrations."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:
    from alembic.config import Config

# The newest migration's revision. Every command opens the database through `upgrade`, and
# comparing with this constant spares it loading Alembic and the migration scripts when the
# schema is current; a test holds it equal to the scripts' head.
HEAD_REVISION = "0003"

# How long a SQLite writer waits for another (the CLI importing while the daemon writes).
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any fixed number unique to cmscan: the PostgreSQL advisory lock held while migrating.
MIGRATION_LOCK = 0x636D7363616E  # "cmscan"


class DatabaseError(Exception):
    """The database cannot be used; the message names it (without its password) and says why."""


class DatabaseUnavailableError(DatabaseError):
    """The database did not answer or refused the connection: trying later may work."""


# Errors that mean "the database is not there right now" (down, starting, out of connections,
# locked), as opposed to a bad schema or a refused row, which persist.
TRANSIENT = (OperationalError, InterfaceError, OSError, ConnectionError, TimeoutError)


def _failure(exc: BaseException, url: str | URL) -> DatabaseError:
    unavailable = isinstance(exc, TRANSIENT)
    return (DatabaseUnavailableError if unavailable else DatabaseError)(describe_error(exc, url))


def redact(url: str | URL) -> str:
    """The URL as it may be shown to a person: never with its password."""
    return make_url(url).render_as_string(hide_password=True)


def async_url(url: str | URL) -> URL:
    """The URL with the asyncio driver of its backend (aiosqlite, psycopg)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}.get(backend)
    if driver is None:
        raise DatabaseError(f"unsupported database {redact(parsed)}: use sqlite or postgresql")
    return parsed.set(drivername=driver)


def sync_url(url: str | URL) -> URL:
    """The URL with the blocking driver of its backend, for Alembic."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    driver = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}.get(backend)
    if driver is None:
        raise DatabaseError(f"unsupported database {redact(parsed)}: use sqlite or postgresql")
    return parsed.set(drivername=driver)


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str | URL) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory database."""
    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def _check_sqlite_directory(url: URL) -> None:
    path = sqlite_path(url)
    if path is not None and not path.parent.is_dir():
        raise DatabaseError(f"cannot open {redact(url)}: directory {path.parent} does not exist")


def _tune_sqlite(engine: sa.engine.Engine) -> None:
    """WAL lets readers run beside the writer; explicit BEGINs make transactions honest."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so that BEGIN IMMEDIATE is possible
        # (the SQLAlchemy-documented recipe for pysqlite and aiosqlite).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.engine.Connection) -> None:
        # A writer takes the write lock up front: upgrading a read transaction later can fail
        # with SQLITE_BUSY no matter how long busy_timeout is.
        mode = "IMMEDIATE" if connection.get_execution_options().get("cmscan_write") else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")


def describe_error(exc: BaseException, url: str | URL) -> str:
    """A one-line account of a database failure that names the database but no secret."""
    detail = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = " ".join(str(detail).split())
    # Drivers sometimes echo the connection string; never let a password through.
    password = make_url(url).password
    if password:
        text = text.replace(str(password), "***")
    return f"database {redact(url)}: {text[:300]}{_sqlite_diagnosis(url)}"


def _sqlite_diagnosis(url: str | URL) -> str:
    """Why SQLite could not write its file, where the file system can tell: SQLite's own
    messages ("unable to open database file", "disk I/O error") do not say."""
    path = sqlite_path(url) if is_sqlite(url) else None
    if path is None:
        return ""
    directory = path.parent
    try:
        stats = os.statvfs(directory)
    except OSError:
        return ""
    if stats.f_flag & os.ST_RDONLY:
        return f" (the file system holding {directory} is read-only)"
    if stats.f_bavail == 0:
        return f" (the file system holding {directory} is full)"
    if not os.access(directory, os.W_OK):
        return f" (this user may not write to {directory})"
    return ""


class Database:
    """An async engine with a read session factory and a write session factory."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        target = async_url(url)
        if self.sqlite:
            _check_sqlite_directory(target)
            self.engine: AsyncEngine = create_async_engine(target)
            _tune_sqlite(self.engine.sync_engine)
        else:
            self.engine = create_async_engine(
                target, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
        writer = self.engine.execution_options(cmscan_write=True)
        self._read = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write = async_sessionmaker(writer, expire_on_commit=False)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; its transaction is rolled back at the end."""
        async with self._read() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits when the block ends and rolls back on error."""
        async with self._write() as session, session.begin():
            yield session

    async def ping(self) -> None:
        """Raise DatabaseError unless the database answers."""
        try:
            async with self.engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
        except (OperationalError, DBAPIError, OSError) as exc:
            raise _failure(exc, self.url) from exc

    async def dispose(self) -> None:
        await self.engine.dispose()


def _alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "store:migrations")
    # Alembic's ini-style options interpolate '%'; escape it so URL-encoded passwords survive.
    config.set_main_option(
        "sqlalchemy.url", sync_url(url).render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


def head_revision() -> str | None:
    """The newest revision as the migration scripts say (slow: loads every script)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()


def _stored_revision(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _sync_engine(url: str) -> sa.engine.Engine:
    target = sync_url(url)
    if not is_sqlite(target):
        return sa.create_engine(target)
    _check_sqlite_directory(target)
    engine = sa.create_engine(target)
    _tune_sqlite(engine)
    return engine


def upgrade(url: str) -> None:
    """Bring the schema to the newest revision (blocking; creates the database file if needed).

    On PostgreSQL an advisory lock serialises upgrades, so replicas started together on an
    empty database do not race to create the same tables.
    """
    engine = _sync_engine(url)
    try:
        with engine.connect() as connection:
            if _stored_revision(connection) == HEAD_REVISION:
                return
            connection.rollback()  # the lock below must be the transaction's first act
            if not is_sqlite(url):
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            from alembic import command

            config = _alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
    except (OperationalError, DBAPIError) as exc:
        raise _failure(exc, url) from exc
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The schema revision the database is at, or None for an empty database."""
    engine = _sync_engine(url)
    try:
        with engine.connect() as connection:
            return _stored_revision(connection)
    except (OperationalError, DBAPIError) as exc:
        raise _failure(exc, url) from exc
    finally:
        engine.dispose()
