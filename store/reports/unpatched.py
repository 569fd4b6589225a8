"""The machines still to fix, streamed from a server-side cursor for the CSV and JSON export."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from store.model import Host, HostState, Organisation, Status
from store.reports.groups import FAILED_STATUSES, in_service, stale_condition


@dataclass(frozen=True, slots=True)
class UnpatchedSelection:
    """Which hosts an export lists: noncompliant ones, and optionally failed or stale ones."""

    ccg: str | None = None
    practice: str | None = None
    include_unreachable: bool = False
    stale_before: datetime | None = None  # also hosts with no good result since then


@dataclass(frozen=True, slots=True)
class UnpatchedHost:
    hostname: str
    address: str | None
    site: str | None
    practice_code: str | None
    practice_name: str | None
    pcn_code: str | None
    ccg_code: str | None
    icb_code: str | None
    status: str
    failing: Any  # the verdict's failed required findings (a JSON list, or None)
    waived: Any  # the verdict's waived findings
    products: Any  # the last good facts' products
    last_scan_at: datetime | None
    last_success_at: datetime | None
    first_seen_at: datetime


STREAM_BATCH = 500  # rows fetched per round trip: memory stays flat however many hosts match


async def unpatched_hosts(
    session: AsyncSession, *, selection: UnpatchedSelection
) -> AsyncIterator[UnpatchedHost]:
    """Hosts to fix, ordered by CCG, practice and hostname, streamed from a server-side cursor."""
    practice = aliased(Organisation)
    statuses = [Status.NONCOMPLIANT.value]
    if selection.include_unreachable:
        statuses += FAILED_STATUSES
    wanted: sa.ColumnElement[bool] = col(HostState.status).in_(statuses)
    if selection.stale_before is not None:
        wanted = sa.or_(wanted, stale_condition(selection.stale_before))
    query: Any = (
        sa.select(
            col(Host.hostname).label("hostname"),
            col(Host.address).label("address"),
            col(Host.site).label("site"),
            col(Host.practice_code).label("practice_code"),
            col(practice.name).label("practice_name"),
            col(Host.pcn_code).label("pcn_code"),
            col(Host.ccg_code).label("ccg_code"),
            col(Host.icb_code).label("icb_code"),
            col(HostState.status).label("status"),
            # Only the parts an export shows: decoding whole documents would cost more than
            # everything else an export row needs.
            col(HostState.verdict)["failing"].label("failing"),
            col(HostState.verdict)["waived"].label("waived"),
            col(HostState.facts)["products"].label("products"),
            col(HostState.last_scan_at).label("last_scan_at"),
            col(HostState.last_success_at).label("last_success_at"),
            col(Host.first_seen_at).label("first_seen_at"),
        )
        .select_from(Host)
        .join(HostState, col(HostState.host_id) == col(Host.id))
        .outerjoin(
            practice,
            sa.and_(
                col(practice.kind) == "practice", col(practice.code) == col(Host.practice_code)
            ),
        )
        .where(in_service(), wanted)
        .order_by(
            col(Host.ccg_code).nulls_last(),
            col(Host.practice_code).nulls_last(),
            col(Host.hostname),
        )
        .execution_options(yield_per=STREAM_BATCH)
    )
    if selection.ccg:
        query = query.where(col(Host.ccg_code) == selection.ccg.strip().upper())
    if selection.practice:
        query = query.where(col(Host.practice_code) == selection.practice.strip().upper())
    result = await session.stream(query)
    async for rows in result.partitions():  # a batch per await, not a row
        for row in rows:
            yield UnpatchedHost(**row._mapping)
