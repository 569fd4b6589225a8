"""Hosts one page at a time, and one host with its recent scans and status history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from store.hosts import find_host
from store.model import Host, HostState, Organisation, Scan, Status, StatusChange
from store.reports.groups import in_service, is_stale


@dataclass(frozen=True, slots=True)
class HostFilter:
    status: str | None = None
    ccg: str | None = None
    practice: str | None = None
    text: str | None = None  # a piece of the hostname, address or site, any case


@dataclass(frozen=True, slots=True)
class HostSummary:
    hostname: str
    address: str | None
    site: str | None
    practice: str | None
    pcn: str | None
    ccg: str | None
    icb: str | None
    status: str
    failing_rules: tuple[str, ...]
    last_scan_at: datetime | None
    last_success_at: datetime | None
    stale: bool


@dataclass(frozen=True, slots=True)
class HostPage:
    total: int
    items: list[HostSummary]


def _host_filter(query: Any, selection: HostFilter) -> Any:
    query = query.where(in_service())
    if selection.status:
        query = query.where(
            sa.func.coalesce(col(HostState.status), Status.UNKNOWN.value) == selection.status
        )
    if selection.ccg:
        query = query.where(col(Host.ccg_code) == selection.ccg.strip().upper())
    if selection.practice:
        query = query.where(col(Host.practice_code) == selection.practice.strip().upper())
    if selection.text:
        text = selection.text.strip()
        query = query.where(
            sa.or_(
                col(Host.hostname).icontains(text, autoescape=True),
                col(Host.address).icontains(text, autoescape=True),
                col(Host.site).icontains(text, autoescape=True),
            )
        )
    return query


async def host_page(
    session: AsyncSession,
    *,
    selection: HostFilter,
    offset: int,
    limit: int,
    cutoff: datetime,
) -> HostPage:
    """One page of hosts in service ordered by hostname (unique, so pages never overlap)."""
    base = sa.select(sa.func.count()).select_from(Host)
    base = base.outerjoin(HostState, col(HostState.host_id) == col(Host.id))
    total = int((await session.execute(_host_filter(base, selection))).scalar_one())
    query = (
        sa.select(
            col(Host.hostname),
            col(Host.address),
            col(Host.site),
            col(Host.practice_code),
            col(Host.pcn_code),
            col(Host.ccg_code),
            col(Host.icb_code),
            col(HostState.status),
            col(HostState.failing_rules),
            col(HostState.last_scan_at),
            col(HostState.last_success_at),
        )
        .select_from(Host)
        .outerjoin(HostState, col(HostState.host_id) == col(Host.id))
        .order_by(col(Host.hostname))
        .offset(offset)
        .limit(limit)
    )
    items = []
    for row in (await session.execute(_host_filter(query, selection))).all():
        last_scan, last_success = row[9], row[10]
        items.append(
            HostSummary(
                hostname=row[0],
                address=row[1],
                site=row[2],
                practice=row[3],
                pcn=row[4],
                ccg=row[5],
                icb=row[6],
                status=row[7] or Status.UNKNOWN,
                failing_rules=tuple(row[8] or ()),
                last_scan_at=last_scan,
                last_success_at=last_success,
                stale=is_stale(last_scan, last_success, cutoff),
            )
        )
    return HostPage(total=total, items=items)


@dataclass(frozen=True, slots=True)
class HostDetail:
    host: Host
    practice_name: str | None
    state: HostState | None
    scans: list[Scan]  # newest first, without their facts
    changes: list[StatusChange]  # newest first


async def host_detail(
    session: AsyncSession, *, name: str, scans: int = 10, changes: int = 20
) -> HostDetail | None:
    """A host by name, address or unique short name, with its recent scans and status history.

    Raises store.hosts.HostLookupError when a short name matches several hosts.
    """
    host = await find_host(session, name=name)
    if host is None or host.id is None:
        return None
    state = await session.get(HostState, host.id)
    practice = None
    if host.practice_code:
        org = await session.get(Organisation, ("practice", host.practice_code))
        practice = org.name if org is not None else None
    # Facts of past scans stay out: the latest good facts are in the state already.
    scan_rows = await session.execute(
        sa.select(Scan)
        .options(sa.orm.defer(Scan.facts))  # type: ignore[arg-type]
        .where(col(Scan.host_id) == host.id)
        .order_by(col(Scan.started_at).desc(), col(Scan.id).desc())
        .limit(scans)
    )
    change_rows = await session.execute(
        sa.select(StatusChange)
        .where(col(StatusChange.host_id) == host.id)
        .order_by(col(StatusChange.at).desc(), col(StatusChange.id).desc())
        .limit(changes)
    )
    return HostDetail(
        host=host,
        practice_name=practice,
        state=state,
        scans=list(scan_rows.scalars()),
        changes=list(change_rows.scalars()),
    )
