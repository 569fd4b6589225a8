"""On-demand rescans: requests that any daemon picks up, and their progress."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from store.db import Database
from store.hosts import find_host
from store.model import Host, HostState, RescanRequest, Scan, Status

NOTIFY_CHANNEL = "cmscan_rescan"  # PostgreSQL LISTEN/NOTIFY channel daemons wait on


class RescanError(ValueError):
    """A rescan request selects nothing, or names hosts that are not inventoried."""


@dataclass(frozen=True, slots=True)
class Selector:
    """Which hosts to rescan; the fields combine (all must match)."""

    hosts: tuple[str, ...] = ()
    practice: str | None = None
    ccg: str | None = None
    status: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in (
                ("hosts", list(self.hosts)),
                ("practice", self.practice),
                ("ccg", self.ccg),
                ("status", self.status),
            )
            if v
        }

    def describe(self) -> str:
        parts = []
        if self.hosts:
            parts.append("hosts " + ", ".join(self.hosts))
        for name in ("practice", "ccg", "status"):
            if getattr(self, name):
                parts.append(f"{name} {getattr(self, name)}")
        return "; ".join(parts) or "everything"


async def select_hosts(
    session: AsyncSession, selector: Selector, *, everything_if_empty: bool = False
) -> list[int]:
    """Ids of the hosts in service that a selector names; unknown host names are an error.
    An empty selector is an error unless `everything_if_empty` (a sweep of the whole fleet)."""
    empty = not (selector.hosts or selector.practice or selector.ccg or selector.status)
    if empty and not everything_if_empty:
        raise RescanError("say which hosts: --host, --practice, --ccg or --status")
    if selector.status is not None and selector.status not in set(Status):
        raise RescanError(f"unknown status {selector.status!r}; use one of {', '.join(Status)}")
    query = (
        sa.select(col(Host.id))
        .join(HostState, col(HostState.host_id) == col(Host.id))
        .where(col(Host.retired_at).is_(None))
    )
    if selector.hosts:
        # Exact names in one query; only the rest need the slower short-name look-up.
        wanted = {name.strip().lower().rstrip("."): name for name in selector.hosts}
        names = sorted(wanted)
        ids: list[int | None] = []
        for start in range(0, len(names), 5000):  # bound the IN list for SQLite
            exact = await session.execute(
                sa.select(col(Host.hostname), col(Host.id)).where(
                    col(Host.hostname).in_(names[start : start + 5000]),
                    col(Host.retired_at).is_(None),
                )
            )
            for hostname, host_id in exact.all():
                ids.append(host_id)
                wanted.pop(hostname)
        unknown = []
        for name in wanted.values():
            host = await find_host(session, name=name)
            if host is None or host.retired_at is not None:
                unknown.append(name)
            else:
                ids.append(host.id)
        if unknown:
            raise RescanError(f"not in the inventory: {', '.join(unknown)}")
        query = query.where(col(Host.id).in_(ids))
    if selector.practice:
        query = query.where(col(Host.practice_code) == selector.practice.strip().upper())
    if selector.ccg:
        query = query.where(col(Host.ccg_code) == selector.ccg.strip().upper())
    if selector.status:
        query = query.where(col(HostState.status) == selector.status)
    return sorted(i for i in (await session.execute(query)).scalars() if i is not None)


async def request_rescan(
    session: AsyncSession, *, selector: Selector, requested_by: str, now: datetime
) -> RescanRequest:
    """Queue a rescan of the selected hosts; on PostgreSQL, wake the daemons at commit."""
    ids = await select_hosts(session, selector)
    if not ids:
        raise RescanError(f"no host in service matches {selector.describe()}")
    # A host waiting under an older request moves to this one; the older request stops
    # counting it so that it can still complete.
    earlier = Counter(
        request_id
        for request_id in (
            await session.execute(
                sa.select(col(HostState.rescan_request_id)).where(
                    col(HostState.host_id).in_(ids), col(HostState.rescan_request_id).is_not(None)
                )
            )
        ).scalars()
        if request_id is not None
    )
    request = RescanRequest(
        selector=selector.to_json(),
        requested_at=now,
        requested_by=requested_by[:100],
        host_count=len(ids),
    )
    session.add(request)
    await session.flush()
    await _stop_counting(session, earlier, now)
    await session.execute(
        sa.update(HostState)
        .where(col(HostState.host_id).in_(ids))
        .values(rescan_request_id=request.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, str(request.id))))
    return request


async def withdraw_out_of_service(session: AsyncSession, *, now: datetime) -> int:
    """Take retired and disabled hosts out of the rescans they wait under; return how many.

    They will not be scanned, so a request that counted them would never complete and
    `rescan --wait` would wait for them until its timeout.
    """
    waiting = (
        await session.execute(
            sa.select(col(HostState.host_id), col(HostState.rescan_request_id))
            .join(Host, col(Host.id) == col(HostState.host_id))
            .where(
                col(HostState.rescan_request_id).is_not(None),
                sa.or_(col(Host.retired_at).is_not(None), col(Host.enabled).is_(False)),
            )
        )
    ).all()
    if not waiting:
        return 0
    await session.execute(
        sa.update(HostState)
        .where(col(HostState.host_id).in_([host_id for host_id, _ in waiting]))
        .values(rescan_request_id=None)
    )
    await _stop_counting(
        session, Counter(request_id for _, request_id in waiting if request_id is not None), now
    )
    return len(waiting)


async def _stop_counting(session: AsyncSession, hosts: Counter[int], now: datetime) -> None:
    """Requests stop counting hosts that left them; those left with nothing to wait for end."""
    for request_id, gone in hosts.items():
        await session.execute(
            sa.update(RescanRequest)
            .where(col(RescanRequest.id) == request_id)
            .values(host_count=col(RescanRequest.host_count) - gone)
        )
    await end_answered(session, hosts.keys(), now)


async def end_answered(session: AsyncSession, request_ids: Collection[int], now: datetime) -> None:
    """Mark done those of these requests that have counted every host they wait for."""
    if not request_ids:
        return
    await session.execute(
        sa.update(RescanRequest)
        .where(
            col(RescanRequest.id).in_(sorted(request_ids)),
            col(RescanRequest.state) != "done",
            col(RescanRequest.done_count) >= col(RescanRequest.host_count),
        )
        .values(state="done", finished_at=now)
    )


@dataclass(frozen=True, slots=True)
class RescanResult:
    """One host's scan done for a request, as `cmscan rescan --wait` prints it."""

    hostname: str
    outcome: str
    reason: str
    status: str
    failing_rules: tuple[str, ...]


async def rescan_results(
    session: AsyncSession, *, request_id: int
) -> tuple[RescanRequest | None, list[RescanResult]]:
    request = await session.get(RescanRequest, request_id)
    if request is None:
        return None, []
    rows = await session.execute(
        sa.select(
            col(Host.hostname),
            col(Scan.outcome),
            col(Scan.reason),
            col(HostState.status),
            col(HostState.failing_rules),
        )
        .join(Host, col(Host.id) == col(Scan.host_id))
        .join(HostState, col(HostState.host_id) == col(Scan.host_id))
        .where(col(Scan.rescan_request_id) == request_id)
        .order_by(col(Scan.finished_at), col(Scan.id))
    )
    results = [
        RescanResult(name, outcome, reason, status, tuple(rules or ()))
        for name, outcome, reason, status, rules in rows.all()
    ]
    return request, results


async def pending_requests(session: AsyncSession) -> Sequence[RescanRequest]:
    query = sa.select(RescanRequest).where(col(RescanRequest.state) != "done")
    return (await session.execute(query.order_by(col(RescanRequest.id)))).scalars().all()


async def enqueue_rescan(
    db: Database, *, hostnames: Sequence[str], requested_by: str, now: datetime
) -> int:
    """Queue one on-demand rescan of these hosts for the daemons; return the request id."""
    async with db.write() as session:
        request = await request_rescan(
            session, selector=Selector(hosts=tuple(hostnames)), requested_by=requested_by, now=now
        )
        assert request.id is not None  # flushed by request_rescan
        return request.id
