"""What every report shares: group levels and codes, hosts in service, and staleness."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from store.model import Host, HostState, Status

GroupLevel = Literal["icb", "ccg", "pcn", "practice"]
GROUP_LEVELS: tuple[GroupLevel, ...] = ("icb", "ccg", "pcn", "practice")
UNKNOWN_GROUP = "unknown"
STATUSES: tuple[str, ...] = tuple(Status)
# Statuses that say the last probe failed; their hosts keep their last good verdict.
FAILED_STATUSES: tuple[str, ...] = (Status.UNREACHABLE, Status.AUTH_FAILED, Status.ERROR)

_GROUP_COLUMNS = {
    "icb": Host.icb_code,
    "ccg": Host.ccg_code,
    "pcn": Host.pcn_code,
    "practice": Host.practice_code,
}

Group = tuple[str, ...]  # one code per requested level, in the order asked for


def group_label(value: object) -> str:
    """A group code as reports show it: the code, or "unknown" when it is missing."""
    text = str(value).strip() if value is not None else ""
    return text or UNKNOWN_GROUP


def group_columns(levels: Sequence[GroupLevel]) -> list[Any]:
    # Blank and missing codes become "unknown" in SQL, so they form one group. Grouping by an
    # expression also keeps SQLite from walking the code's index, which would read host_state
    # in random order: a plain scan is several times faster on a large fleet.
    return [
        sa.func.coalesce(
            sa.func.nullif(sa.func.trim(col(_GROUP_COLUMNS[level])), ""), UNKNOWN_GROUP
        ).label(f"g_{level}")
        for level in levels
    ]


def group_of(row: Sequence[Any], width: int) -> Group:
    return tuple(group_label(value) for value in row[:width])


def in_service() -> sa.ColumnElement[bool]:
    return col(Host.retired_at).is_(None)


def stale_condition(cutoff: datetime) -> sa.ColumnElement[bool]:
    """Scanned at least once, and no good result since `cutoff`."""
    return sa.and_(
        col(HostState.last_scan_at).is_not(None),
        sa.or_(col(HostState.last_success_at).is_(None), col(HostState.last_success_at) < cutoff),
    )


async def for_aggregates(session: AsyncSession) -> None:
    """Tune the session's transaction for the report queries that follow (call it first).

    On PostgreSQL: one snapshot for every query, so the figures agree with each other, and no
    JIT: it misjudges JSON set-returning functions and spends a second compiling queries that
    run in a fraction of that. SQLite's read transaction is a snapshot already.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        await session.execute(sa.text("SET LOCAL jit = off"))


def is_stale(last_scan: datetime | None, last_success: datetime | None, cutoff: datetime) -> bool:
    """The Python twin of stale_condition, for one host already read."""
    return last_scan is not None and (last_success is None or last_success < cutoff)
