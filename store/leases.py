"""Claiming hosts to scan with leases, so that N daemons share a fleet and none scans twice."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from store.model import Host, HostState, ScannerInstance


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
    claim_generation: int = 0  # what the result's write is fenced with

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
    col(HostState.claim_generation),
)


def _in_service() -> sa.ColumnElement[bool]:
    return sa.and_(col(Host.retired_at).is_(None), col(Host.enabled).is_(True))


def live_owners(*, dead_before: datetime) -> sa.Select[Any]:
    """The instances whose claims still count: not stopped, and heard from since `dead_before`."""
    return sa.select(col(ScannerInstance.id)).where(
        col(ScannerInstance.stopped_at).is_(None),
        col(ScannerInstance.heartbeat_at) >= dead_before,
    )


def _lease_free(now: datetime, dead_before: datetime | None) -> sa.ColumnElement[bool]:
    # A lease ends when it expires or when its owner dies, whichever comes first: a killed
    # daemon's hosts go to the others within the heartbeat timeout, not the whole lease.
    expired = sa.or_(
        col(HostState.lease_expires_at).is_(None), col(HostState.lease_expires_at) < now
    )
    if dead_before is None:
        return expired
    return sa.or_(expired, col(HostState.lease_owner).not_in(live_owners(dead_before=dead_before)))


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
        .values(
            lease_owner=owner,
            lease_expires_at=until,
            claim_generation=col(HostState.claim_generation) + 1,
        )
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


# How far down the priority order a claim looks when spreading work across practices.
CANDIDATES_PER_SLOT = 4


async def _claim(
    session: AsyncSession,
    *,
    where: list[sa.ColumnElement[bool]],
    priority: list[sa.Label[Any]],
    limit: int,
    per_site: int,
    owner: str,
    until: datetime,
    now: datetime,
    dead_before: datetime | None = None,
) -> list[WorkItem]:
    """Lease up to `limit` hosts matching `where`, spread across practices.

    Taking the first hosts in priority order would take whole practices at once (hosts are
    numbered practice by practice), and the per-site limit would then hand most of them
    back. So the claim looks at the head of the queue and takes each practice's first host,
    then each one's second, and so on, up to `per_site` per practice; rescans still go first.
    """
    head = (
        sa.select(
            col(HostState.host_id),
            col(HostState.rescan_request_id),
            col(Host.practice_code),
            *priority,
        )
        .join(Host, col(Host.id) == col(HostState.host_id))
        .where(*where)
        .order_by(*priority)
        .limit(max(limit * CANDIDATES_PER_SLOT, 200))
        .subquery()
    )
    # A host without a practice is a site of its own.
    site = sa.func.coalesce(head.c.practice_code, sa.cast(head.c.host_id, sa.String))
    order = [head.c[label.name] for label in priority]
    ranked = sa.select(
        head.c.host_id,
        head.c.rescan_request_id.is_(None).label("scheduled"),
        sa.func.row_number().over(partition_by=site, order_by=order).label("site_rank"),
        sa.func.row_number().over(order_by=order).label("overall"),
    ).subquery()
    candidates = (
        sa.select(ranked.c.host_id)
        .where(ranked.c.site_rank <= per_site)
        .order_by(ranked.c.scheduled, ranked.c.site_rank, ranked.c.overall)
        .limit(limit)
    )
    ids: list[int] = list((await session.execute(candidates)).scalars())
    if not ids:
        return []
    # Lock what is still free: another replica may have claimed some of them meanwhile.
    # FOR UPDATE SKIP LOCKED lets replicas claim at once without waiting for or double-
    # claiming each other's rows; SQLite has one daemon per database and ignores it.
    locked = await session.execute(
        sa.select(col(HostState.host_id))
        .where(col(HostState.host_id).in_(ids), _lease_free(now, dead_before))
        .with_for_update(skip_locked=True)
    )
    free = set(locked.scalars())
    return await _lease(session, [i for i in ids if i in free], owner=owner, until=until)


async def claim_due(
    session: AsyncSession,
    *,
    owner: str,
    now: datetime,
    until: datetime,
    dead_before: datetime | None = None,
    limit: int,
    scheduled: bool = True,
    per_site: int = 1_000_000,
    busy_sites: Collection[str] = (),
    held_profiles: Collection[str] = (),
) -> list[WorkItem]:
    """Lease up to `limit` hosts that are due: manual rescans first, then hosts never scanned,
    then the most overdue. With `scheduled` False (outside scan windows) only rescans."""
    if limit <= 0:
        return []
    wanted: sa.ColumnElement[bool] = col(HostState.rescan_request_id).is_not(None)
    if scheduled:
        wanted = sa.or_(wanted, col(HostState.next_due_at) <= now)
    return await _claim(
        session,
        where=[
            _in_service(),
            wanted,
            _lease_free(now, dead_before),
            _not_in(col(Host.practice_code), busy_sites),
            _not_in(col(Host.credential_profile), held_profiles),
        ],
        priority=[
            col(HostState.rescan_request_id).is_(None).label("not_rescan"),
            col(HostState.last_scan_at).is_not(None).label("scanned_before"),
            col(HostState.next_due_at).label("due"),
            col(HostState.host_id).label("tie"),
        ],
        limit=limit,
        per_site=per_site,
        owner=owner,
        until=until,
        now=now,
        dead_before=dead_before,
    )


async def claim_hosts(
    session: AsyncSession,
    *,
    owner: str,
    host_ids: Collection[int],
    now: datetime,
    until: datetime,
    dead_before: datetime | None = None,
    limit: int,
    per_site: int = 1_000_000,
    busy_sites: Collection[str] = (),
    held_profiles: Collection[str] = (),
) -> list[WorkItem]:
    """Lease up to `limit` of the given hosts whose lease is free (for one-shot sweeps)."""
    if limit <= 0 or not host_ids:
        return []
    return await _claim(
        session,
        where=[
            col(HostState.host_id).in_(sorted(host_ids)),
            _lease_free(now, dead_before),
            _not_in(col(Host.practice_code), busy_sites),
            _not_in(col(Host.credential_profile), held_profiles),
        ],
        priority=[col(HostState.host_id).label("tie")],
        limit=limit,
        per_site=per_site,
        owner=owner,
        until=until,
        now=now,
        dead_before=dead_before,
    )


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
