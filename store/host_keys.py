"""SSH host keys pinned on first use: the first key a host shows is kept, and only that key."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from collectors.ssh_config import PinnedKey
from store.db import Database
from store.model import SSHHostKey, utcnow


def _key(host: str) -> str:
    # Windows host names ignore case; the hosts table keeps them lower-case too.
    return host.strip().lower().rstrip(".")


async def get_host_key(session: AsyncSession, *, host: str, port: int) -> PinnedKey | None:
    """The key pinned for host:port, or None when none is."""
    row = (
        await session.execute(
            select(SSHHostKey).where(
                col(SSHHostKey.host) == _key(host), col(SSHHostKey.port) == port
            )
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return PinnedKey(key_type=row.key_type, fingerprint=row.fingerprint, public_key=row.public_key)


async def pin_host_key(session: AsyncSession, *, host: str, port: int, key: PinnedKey) -> PinnedKey:
    """Pin `key` for host:port unless a key is pinned already; return the pinned key.

    Two scanners meeting a new host at once both try to insert; the database keeps the
    first and the second gets it back, so neither silently replaces the other's pin.
    """
    values = {
        "host": _key(host),
        "port": port,
        "key_type": key.key_type,
        "fingerprint": key.fingerprint,
        "public_key": key.public_key,
        "pinned_at": utcnow(),
    }
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(SSHHostKey).values(**values).on_conflict_do_nothing()
    await session.execute(statement)
    pinned = await get_host_key(session, host=host, port=port)
    assert pinned is not None  # inserted just now, or there before
    return pinned


async def forget_host_key(session: AsyncSession, *, host: str, port: int) -> bool:
    """Remove a pin (after a host was rebuilt); return whether there was one."""
    result = await session.execute(
        delete(SSHHostKey).where(col(SSHHostKey.host) == _key(host), col(SSHHostKey.port) == port)
    )
    return bool(getattr(result, "rowcount", 0))


class DatabaseHostKeys:
    """The SSH collector's HostKeyStore, kept in the database every scanner shares."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, host: str, port: int) -> PinnedKey | None:
        async with self._database.read() as session:
            return await get_host_key(session, host=host, port=port)

    async def pin(self, host: str, port: int, key: PinnedKey) -> PinnedKey:
        async with self._database.write() as session:
            return await pin_host_key(session, host=host, port=port, key=key)
