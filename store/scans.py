"""Scan history rows: the states they update, inserting them in bulk, rescan counts, pruning."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from store.model import HostState, RescanRequest, Scan
from store.rescans import end_answered


async def host_states(session: AsyncSession, *, host_ids: Collection[int]) -> dict[int, HostState]:
    """The state rows of these hosts, by host id, locked until the caller's transaction ends
    (PostgreSQL), so that no claim can slip between reading a row's claim and writing it."""
    query = (
        sa.select(HostState)
        .where(col(HostState.host_id).in_(sorted(host_ids)))
        .order_by(col(HostState.host_id))  # one lock order for every writer: no deadlocks
        .with_for_update()
    )
    return {state.host_id: state for state in (await session.execute(query)).scalars()}


async def insert_scans(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert scan rows in one statement; their ids, in the order of `rows`."""
    inserted = await session.execute(
        sa.insert(Scan).returning(col(Scan.id), sort_by_parameter_order=True), rows
    )
    return [row[0] for row in inserted.all() if row[0] is not None]


async def prune_scans(session: AsyncSession, *, before: datetime, limit: int = 5000) -> int:
    """Delete up to `limit` scans that finished before `before`, never a host's latest one;
    returns how many. Status history (status_change) is kept: it is small and draws the
    deployment curve."""
    latest = sa.select(col(HostState.last_scan_id)).where(col(HostState.last_scan_id).is_not(None))
    old = (
        sa.select(col(Scan.id))
        .where(col(Scan.finished_at) < before, col(Scan.id).not_in(latest))
        .limit(limit)
    )
    ids = list((await session.execute(old)).scalars())
    if ids:
        await session.execute(sa.delete(Scan).where(col(Scan.id).in_(ids)))
    return len(ids)


async def count_rescans(session: AsyncSession, done: Mapping[int, int], *, now: datetime) -> None:
    """Add each request's newly answered hosts to its count, and end requests now complete."""
    for request_id, count in done.items():
        await session.execute(
            sa.update(RescanRequest)
            .where(col(RescanRequest.id) == request_id)
            .values(done_count=col(RescanRequest.done_count) + count, state="running")
        )
    await end_answered(session, done.keys(), now)
