"""Hosts: inventory synchronisation (add, update, retire, revive), look-up and listing."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from inventory.spec import FIELDS, HostSpec
from store.model import Host, HostState, Status

# The host columns an inventory owns (all but the name, which identifies the host);
# everything else (state, history) belongs to cmscan.
INVENTORY_COLUMNS = tuple(name for name in FIELDS if name != "hostname")


class HostLookupError(LookupError):
    """A name matches several hosts; the message lists them."""


@dataclass(slots=True)
class SyncPlan:
    """What importing an inventory would change, computed before anything is written."""

    added: list[HostSpec] = field(default_factory=list)
    updated: list[tuple[int, HostSpec, list[str]]] = field(default_factory=list)  # id, spec, fields
    unchanged: int = 0
    retired: list[tuple[int, str]] = field(default_factory=list)  # id, hostname
    revived: list[tuple[int, str]] = field(default_factory=list)
    active_before: int = 0  # hosts in service before the import

    @property
    def changes(self) -> int:
        return len(self.added) + len(self.updated) + len(self.retired) + len(self.revived)


def _columns(spec: HostSpec) -> dict[str, Any]:
    values = {name: getattr(spec, name) for name in INVENTORY_COLUMNS}
    values["tags"] = list(spec.tags)
    return values


async def plan_sync(
    session: AsyncSession,
    *,
    specs: Sequence[HostSpec],
    mentioned: Collection[str] = (),
    retire_missing: bool = True,
) -> SyncPlan:
    """Compare the inventory with the database. Hosts absent from `specs` and `mentioned`
    are retired when `retire_missing` (a full inventory); retired hosts listed again return."""
    columns = [
        Host.id,
        Host.hostname,
        Host.retired_at,
        *(getattr(Host, c) for c in INVENTORY_COLUMNS),
    ]
    existing = {row.hostname: row for row in (await session.execute(select(*columns))).all()}
    plan = SyncPlan(active_before=sum(1 for row in existing.values() if row.retired_at is None))
    listed = {spec.hostname for spec in specs}
    for spec in specs:
        row = existing.get(spec.hostname)
        if row is None:
            plan.added.append(spec)
            continue
        wanted = _columns(spec)
        changed = [c for c in INVENTORY_COLUMNS if _stored(getattr(row, c)) != wanted[c]]
        if row.retired_at is not None:
            plan.revived.append((row.id, row.hostname))
        if changed:
            plan.updated.append((row.id, spec, changed))
        elif row.retired_at is None:
            plan.unchanged += 1
    if retire_missing:
        keep = listed | set(mentioned)
        plan.retired = [
            (row.id, name)
            for name, row in sorted(existing.items())
            if row.retired_at is None and name not in keep
        ]
    return plan


def _stored(value: Any) -> Any:
    return list(value) if isinstance(value, list | tuple) else value


async def apply_sync(
    session: AsyncSession,
    plan: SyncPlan,
    *,
    specs: Sequence[HostSpec],
    source: str,
    now: datetime,
) -> None:
    """Write a plan in bulk. The caller's transaction makes the import all-or-nothing."""
    if plan.added:
        rows = [
            {
                "hostname": s.hostname,
                **_columns(s),
                "enabled": True,
                "first_seen_at": now,
                "last_seen_at": now,
                "source": source,
            }
            for s in plan.added
        ]
        result = await session.execute(insert(Host).returning(col(Host.id)), rows)
        new_ids = [row[0] for row in result.all()]
        await session.execute(
            insert(HostState),
            [
                {
                    "host_id": i,
                    "status": Status.UNKNOWN,
                    "status_since": now,
                    "next_due_at": now,
                    "failing_rules": [],
                    "advisories": [],
                    "consecutive_failures": 0,
                }
                for i in new_ids
            ],
        )
    if plan.updated:
        await session.execute(
            update(Host),
            [{"id": host_id, **_columns(spec)} for host_id, spec, _ in plan.updated],
        )
    if plan.revived:
        revived = [host_id for host_id, _ in plan.revived]
        await session.execute(update(Host).where(col(Host.id).in_(revived)).values(retired_at=None))
        # A host that comes back is due now: its last result may be months old.
        await session.execute(
            update(HostState).where(col(HostState.host_id).in_(revived)).values(next_due_at=now)
        )
    if plan.retired:
        retired = [host_id for host_id, _ in plan.retired]
        await session.execute(update(Host).where(col(Host.id).in_(retired)).values(retired_at=now))
    listed = [s.hostname for s in specs]
    for chunk in _chunks(listed, 5000):
        await session.execute(
            update(Host)
            .where(col(Host.hostname).in_(chunk))
            .values(last_seen_at=now, source=source)
        )


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    # SQLite limits bound parameters per statement; PostgreSQL prefers moderate IN lists too.
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def find_host(session: AsyncSession, *, name: str) -> Host | None:
    """The host with this name (any case), address, or unique short name; None if there is none.

    Raises HostLookupError when a short name matches several hosts in different domains.
    """
    key = name.strip().lower().rstrip(".")
    host = (
        await session.execute(select(Host).where(col(Host.hostname) == key))
    ).scalar_one_or_none()
    if host is not None:
        return host
    try:
        address = str(ipaddress.ip_address(key.strip("[]")))
    except ValueError:
        address = None
    if address is not None:
        query = (
            select(Host)
            .where(col(Host.address) == address)
            .order_by(col(Host.retired_at).is_not(None))
        )
        return (await session.execute(query.limit(1))).scalar_one_or_none()
    if "." in key:
        return None
    matches = (
        (
            await session.execute(
                select(Host).where(col(Host.hostname).startswith(key + ".", autoescape=True))
            )
        )
        .scalars()
        .all()
    )
    if len(matches) > 1:
        names = ", ".join(sorted(h.hostname for h in matches))
        raise HostLookupError(f"{name!r} matches several hosts: {names}; give the full name")
    return matches[0] if matches else None


@dataclass(frozen=True, slots=True)
class HostRow:
    """A host as listings show it: inventory fields and its current status."""

    host: Host
    status: str
    last_scan_at: datetime | None


async def list_hosts(
    session: AsyncSession,
    *,
    ccg: str | None = None,
    practice: str | None = None,
    include_retired: bool = False,
) -> list[HostRow]:
    query = (
        select(Host, col(HostState.status), col(HostState.last_scan_at))
        .outerjoin(HostState, col(HostState.host_id) == col(Host.id))
        .order_by(
            col(Host.ccg_code).nulls_last(),
            col(Host.practice_code).nulls_last(),
            col(Host.hostname),
        )
    )
    if ccg:
        query = query.where(col(Host.ccg_code) == ccg.strip().upper())
    if practice:
        query = query.where(col(Host.practice_code) == practice.strip().upper())
    if not include_retired:
        query = query.where(col(Host.retired_at).is_(None))
    rows = (await session.execute(query)).all()
    return [HostRow(host, status or Status.UNKNOWN, last) for host, status, last in rows]


async def transports_in_service(session: AsyncSession) -> list[str]:
    """The transports the hosts in service use: the collectors a sweep has to build."""
    query = select(col(Host.transport)).where(col(Host.retired_at).is_(None)).distinct()
    return sorted((await session.execute(query)).scalars())


async def practices_in_service(session: AsyncSession) -> dict[int, str | None]:
    """Every host in service with its practice code: how a sweep orders and spreads its claims."""
    query = select(col(Host.id), col(Host.practice_code)).where(col(Host.retired_at).is_(None))
    practices: dict[int, str | None] = {}
    for host_id, practice in (await session.execute(query)).all():
        if host_id is not None:  # the model's id is optional only before it is inserted
            practices[host_id] = practice
    return practices
