"""Running daemons: registered with a heartbeat, so commands know whether one is listening."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from importlib.metadata import version

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from store.model import ScannerInstance

HEARTBEAT = timedelta(seconds=10)
ALIVE_WITHIN = timedelta(seconds=30)  # three missed heartbeats and a daemon counts as gone


async def register(session: AsyncSession, *, instance_id: str, now: datetime) -> None:
    session.add(
        ScannerInstance(
            id=instance_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
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


async def live_instances(session: AsyncSession, *, now: datetime) -> list[ScannerInstance]:
    rows = await session.execute(
        sa.select(ScannerInstance).where(
            col(ScannerInstance.stopped_at).is_(None),
            col(ScannerInstance.heartbeat_at) > now - ALIVE_WITHIN,
        )
    )
    return list(rows.scalars())
