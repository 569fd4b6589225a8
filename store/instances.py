"""Scanning processes, registered with a heartbeat: their claims count only while they live."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from store.leases import release_all
from store.model import HostState, ScannerInstance

DAEMON = "daemon"  # picks up scheduled scans and rescans
ONE_SHOT = "scan"  # `cmscan scan`: holds claims while it sweeps, takes no rescans


async def register(
    session: AsyncSession, *, instance_id: str, pid: int, now: datetime, kind: str = DAEMON
) -> None:
    session.add(
        ScannerInstance(
            id=instance_id,
            kind=kind,
            hostname=socket.gethostname(),
            pid=pid,
            version=version("cmscan"),
            started_at=now,
            heartbeat_at=now,
        )
    )


async def heartbeat(session: AsyncSession, *, instance_id: str, now: datetime) -> None:
    await session.execute(
        sa.update(ScannerInstance)
        .where(col(ScannerInstance.id) == instance_id)
        .values(heartbeat_at=now)
    )


async def stopped(session: AsyncSession, *, instance_id: str, now: datetime) -> None:
    await session.execute(
        sa.update(ScannerInstance)
        .where(col(ScannerInstance.id) == instance_id)
        .values(stopped_at=now, heartbeat_at=now)
    )


async def live_instances(
    session: AsyncSession, *, dead_before: datetime, kind: str = DAEMON
) -> list[ScannerInstance]:
    """Instances of `kind` still running: not stopped, and heard from since `dead_before`."""
    rows = await session.execute(
        sa.select(ScannerInstance).where(
            col(ScannerInstance.kind) == kind,
            col(ScannerInstance.stopped_at).is_(None),
            col(ScannerInstance.heartbeat_at) >= dead_before,
        )
    )
    return list(rows.scalars())


@dataclass(frozen=True, slots=True)
class InstanceRow:
    """An instance as `cmscan instances` lists it."""

    instance: ScannerInstance
    claims: int  # hosts whose lease it holds now
    alive: bool


async def list_instances(
    session: AsyncSession, *, now: datetime, dead_before: datetime, limit: int = 50
) -> list[InstanceRow]:
    """The most recently heard-from instances, newest first, with the claims each holds."""
    claims = (
        sa.select(col(HostState.lease_owner), sa.func.count().label("claims"))
        .where(col(HostState.lease_expires_at) > now)
        .group_by(col(HostState.lease_owner))
        .subquery()
    )
    rows = await session.execute(
        sa.select(ScannerInstance, sa.func.coalesce(claims.c.claims, 0))
        .outerjoin(claims, claims.c.lease_owner == col(ScannerInstance.id))
        .order_by(col(ScannerInstance.heartbeat_at).desc())
        .limit(limit)
    )
    return [
        InstanceRow(
            instance,
            int(count),
            instance.stopped_at is None and instance.heartbeat_at >= dead_before,
        )
        for instance, count in rows.all()
    ]


async def free_dead_predecessors(
    session: AsyncSession,
    *,
    hostname: str,
    running: Callable[[int], bool],
    keep: str,
    now: datetime,
) -> list[tuple[str, int]]:
    """Mark stopped the instances on `hostname` whose process is gone (killed, or the machine
    restarted), and give back their leases; returns (instance, leases given back) for each.
    `running(pid)` tells whether a process of this machine still runs; `keep` is the caller."""
    rows = await session.execute(
        sa.select(col(ScannerInstance.id), col(ScannerInstance.pid)).where(
            col(ScannerInstance.hostname) == hostname,
            col(ScannerInstance.stopped_at).is_(None),
            col(ScannerInstance.id) != keep,
        )
    )
    freed: list[tuple[str, int]] = []
    for instance_id, pid in rows.all():
        if running(pid):
            continue
        # Its last heartbeat stays as it was: that is when it was last known alive.
        await session.execute(
            sa.update(ScannerInstance)
            .where(col(ScannerInstance.id) == instance_id)
            .values(stopped_at=now)
        )
        freed.append((instance_id, await release_all(session, owner=instance_id)))
    return freed
