"""Claiming hosts to scan with leases, so that N daemons share a fleet and none scans twice."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from scanner.model import Host, HostState


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A claimed host: everything needed to probe it and to record the result."""

    host_id: int
    hostname: str
    address: str | None
    port: int
    transport: str
    practice_code: str | None
    ccg_code: str | None
    credential_profile: str
    rescan_request_id: int | None

    @property
    def site(self) -> str | None:
        """What the per-site limit counts: the practice, whose WAN link all its hosts share."""
        return self.practice_code


_COLUMNS = (
    col(Host.id),
    col(Host.hostname),
    col(Host.address),
    col(Host.port),
    col(Host.transport),
    col(Host.practice_code),
    col(Host.ccg_code),
    col(Host.credential_profile),
    col(HostState.rescan_request_id),
)


def _in_service() -> sa.ColumnElement[bool]:
    return sa.and_(col(Host.retired_at).is_(None), col(Host.enabled).is_(True))


def _lease_free(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(col(HostState.lease_expires_at).is_(None), col(HostState.lease_expires_at) < now)


def _not_in(column: Any, values: Collection[str]) -> sa.ColumnElement[bool]:
    # NULL NOT IN (...) is NULL, not true: hosts without a value must stay eligible.
    if not values:
        return sa.true()
    return sa.or_(column.is_(None), column.not_in(sorted(values)))


async def _lease(
    session: AsyncSession, ids: Sequence[int], *, owner: str, until: datetime
) -> list[WorkItem]:
    if not ids:
        return []
    await session.execute(
        sa.update(HostState)
        .where(col(HostState.host_id).in_(ids))
        .values(lease_owner=owner, lease_expires_at=until)
    )
    rows = await session.execute(
        sa.select(*_COLUMNS)
        .join(HostState, col(HostState.host_id) == col(Host.id))
        .where(col(Host.id).in_(ids))
    )
    by_id = {
        int(host_id): WorkItem(int(host_id), *rest)  # type: ignore[arg-type]
        for host_id, *rest in rows.all()
    }
    return [by_id[i] for i in ids if i in by_id]  # keep the priority order


async def claim_due(
    session: AsyncSession,
    *,
    owner: str,
    now: datetime,
    until: datetime,
    limit: int,
    scheduled: bool = True,
    busy_sites: Collection[str] = (),
    held_profiles: Collection[str] = (),
) -> list[WorkItem]:
    """Lease up to `limit` hosts that are due: manual rescans first, then hosts never scanned,
    then the most overdue. With `scheduled` False (outside scan windows) only rescans.

    On PostgreSQL, FOR UPDATE SKIP LOCKED lets replicas claim at the same time without
    waiting for or double-claiming each other's rows; SQLite has one daemon per database.
    """
    if limit <= 0:
        return []
    wanted: sa.ColumnElement[bool] = col(HostState.rescan_request_id).is_not(None)
    if scheduled:
        wanted = sa.or_(wanted, col(HostState.next_due_at) <= now)
    query = (
        sa.select(col(HostState.host_id))
        .join(Host, col(Host.id) == col(HostState.host_id))
        .where(
            _in_service(),
            wanted,
            _lease_free(now),
            _not_in(col(Host.practice_code), busy_sites),
            _not_in(col(Host.credential_profile), held_profiles),
        )
        .order_by(
            col(HostState.rescan_request_id).is_(None),
            col(HostState.last_scan_at).is_not(None),
            col(HostState.next_due_at),
            col(HostState.host_id),
        )
        .limit(limit)
        .with_for_update(skip_locked=True, of=HostState)
    )
    ids = list((await session.execute(query)).scalars().all())
    return await _lease(session, ids, owner=owner, until=until)


async def claim_hosts(
    session: AsyncSession,
    *,
    owner: str,
    host_ids: Collection[int],
    now: datetime,
    until: datetime,
    limit: int,
    busy_sites: Collection[str] = (),
    held_profiles: Collection[str] = (),
) -> list[WorkItem]:
    """Lease up to `limit` of the given hosts whose lease is free (for one-shot sweeps)."""
    if limit <= 0 or not host_ids:
        return []
    query = (
        sa.select(col(HostState.host_id))
        .join(Host, col(Host.id) == col(HostState.host_id))
        .where(
            col(HostState.host_id).in_(sorted(host_ids)),
            _lease_free(now),
            _not_in(col(Host.practice_code), busy_sites),
            _not_in(col(Host.credential_profile), held_profiles),
        )
        .order_by(col(HostState.host_id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=HostState)
    )
    ids = list((await session.execute(query)).scalars().all())
    return await _lease(session, ids, owner=owner, until=until)


async def release(session: AsyncSession, *, owner: str, host_ids: Collection[int]) -> None:
    """Give back leases on hosts this owner claimed but will not scan."""
    if host_ids:
        await session.execute(
            sa.update(HostState)
            .where(
                col(HostState.host_id).in_(sorted(host_ids)), col(HostState.lease_owner) == owner
            )
            .values(lease_owner=None, lease_expires_at=None)
        )


async def release_all(session: AsyncSession, *, owner: str) -> int:
    """Give back every lease this owner holds (on shutdown); returns how many."""
    result = await session.execute(
        sa.update(HostState)
        .where(col(HostState.lease_owner) == owner)
        .values(lease_owner=None, lease_expires_at=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def count_due(session: AsyncSession, *, now: datetime) -> int:
    """Hosts in service that are due now or waiting for a rescan."""
    query = (
        sa.select(sa.func.count())
        .select_from(HostState)
        .join(Host, col(Host.id) == col(HostState.host_id))
        .where(
            _in_service(),
            sa.or_(
                col(HostState.rescan_request_id).is_not(None), col(HostState.next_due_at) <= now
            ),
        )
    )
    return int((await session.execute(query)).scalar_one())
