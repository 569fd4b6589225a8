"""The active policy as stored: applied versions, and the stored facts a re-grade reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from policy import Policy, default_policy, load_policy_text
from store.model import Host, HostState, PolicyVersion

# Hosts re-graded per transaction: large enough to amortise round trips, small enough that
# a daemon writing scan results next to a re-grade never waits long for the write lock.
BATCH = 1000


async def active_policy_version(session: AsyncSession) -> PolicyVersion | None:
    """The newest applied policy row, or None when none was ever applied."""
    query = select(PolicyVersion).order_by(col(PolicyVersion.id).desc()).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


async def get_active_policy(session: AsyncSession) -> Policy:
    """The policy every replica uses: the newest applied one, else the shipped default.

    Compiling is cached by content, so calling this often (say, once per sweep) is cheap.
    """
    row = await active_policy_version(session)
    if row is None:
        return default_policy()
    return load_policy_text(row.content, f"policy version {row.id}")


StoredFacts = tuple[
    int, str, dict[str, Any] | None, dict[str, Any] | None, str | None, str, str | None
]


def _batch_query(after: int, ids: Sequence[int] | None) -> Select[Any]:
    # Plain columns, not ORM objects: the unit of work's per-object bookkeeping costs more
    # than evaluating the policy, and the changes are written in bulk below.
    query = (
        select(
            col(HostState.host_id),
            col(HostState.status),
            col(HostState.facts),
            col(HostState.verdict),
            col(HostState.policy_hash),
            col(Host.hostname),
            col(Host.ccg_code),
        )
        .join(Host, col(Host.id) == col(HostState.host_id))
        .where(col(HostState.facts).is_not(None), col(Host.retired_at).is_(None))
        .order_by(col(HostState.host_id))
    )
    if ids is not None:
        return query.where(col(HostState.host_id).in_(ids))
    return query.where(col(HostState.host_id) > after).limit(BATCH)


async def stored_facts_batch(
    session: AsyncSession, *, after: int, host_ids: Sequence[int] | None, lock: bool
) -> list[StoredFacts]:
    """One batch of (host id, status, facts, verdict, policy hash, hostname, CCG) for hosts in
    service with stored facts: the given `host_ids`, or the next BATCH hosts after `after`.
    `lock` holds the rows (PostgreSQL) so a daemon's write waits instead of being overwritten."""
    query = _batch_query(after, host_ids)
    if lock:
        query = query.with_for_update(of=HostState)
    return [tuple(row) for row in (await session.execute(query)).all()]


async def update_states(session: AsyncSession, changes: Sequence[dict[str, Any]]) -> None:
    """Write many hosts' state columns in one statement; each dict holds its host_id."""
    if changes:
        await session.execute(update(HostState), changes)


async def record_policy_version(
    session: AsyncSession, policy: Policy, *, applied_by: str, now: datetime
) -> int:
    """Store `policy` as the newest applied version, the one every replica will use."""
    row = PolicyVersion(
        policy_id=policy.id,
        content_hash=policy.content_hash,
        content=policy.source,
        applied_at=now,
        applied_by=applied_by[:100],
    )
    session.add(row)
    await session.flush()
    assert row.id is not None  # flushed
    return row.id
