"""Everything a scanning process needs, built once from the settings: database, policy, engine."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from collectors.base import Collector, Timeouts
from config.settings import Settings
from engine.credential_book import CredentialBook
from engine.grading import CompletedScan, Transition
from engine.lockout import LockoutGuard
from engine.outage import Outage
from engine.policy_box import PolicyBox
from engine.probing import Engine, Limits
from engine.scheduling import Schedule
from engine.telemetry import Telemetry
from engine.writer import ResultWriter, WriterConfig
from store.db import Database
from store.model import utcnow
from store.policies import get_active_policy
from store.suspensions import active_suspensions


def new_scanner_id(kind: str) -> str:
    """A name for this process's leases: where it runs, and unique even after a restart."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"[:100]


def timeouts_from(settings: Settings) -> Timeouts:
    return Timeouts(
        connect=settings.timeouts.connect.total_seconds(),
        operation=settings.timeouts.operation.total_seconds(),
        total=settings.timeouts.total.total_seconds(),
    )


@dataclass
class Runtime:
    settings: Settings
    database: Database
    scanner_id: str
    telemetry: Telemetry
    outage: Outage
    policy: PolicyBox
    schedule: Schedule
    lockout: LockoutGuard
    credentials: CredentialBook
    writer: ResultWriter
    engine: Engine

    async def close(self) -> None:
        for collector in self.engine.collectors.values():
            await collector.aclose()
        await self.database.dispose()


async def build_runtime(
    settings: Settings,
    *,
    collectors: Mapping[str, Collector],
    scanner_id: str,
    concurrency: int | None = None,
    telemetry: Telemetry | None = None,
    clock: Callable[[], datetime] = utcnow,
    on_recorded: Callable[[CompletedScan, Transition | None], None] | None = None,
) -> Runtime:
    """Open the database (already migrated by the caller) and assemble the engine."""
    database = Database(settings.database_url)
    telemetry = telemetry or Telemetry()
    outage = Outage(settings.database_url, telemetry)
    lockout = LockoutGuard(
        max_failures=settings.lockout.max_failures,
        window=settings.lockout.window,
        cooldown=settings.lockout.cooldown,
    )
    async with database.read() as session:
        policy = PolicyBox(await get_active_policy(session))
        for suspension in await active_suspensions(session, now=clock()):
            lockout.suspend(suspension)
    schedule = Schedule.from_settings(settings.schedule)
    writer = ResultWriter(
        database,
        scanner_id=scanner_id,
        policy=policy,
        schedule=schedule,
        telemetry=telemetry,
        outage=outage,
        config=WriterConfig(
            batch_size=settings.daemon.batch_size,
            flush_interval=settings.daemon.flush_interval.total_seconds(),
            held_limit=settings.daemon.held_results,
        ),
        clock=clock,
        on_recorded=on_recorded,
    )
    credentials = CredentialBook(settings.credentials)
    engine = Engine(
        collectors=collectors,
        credentials=credentials,
        policy=policy,
        timeouts=timeouts_from(settings),
        lockout=lockout,
        writer=writer,
        telemetry=telemetry,
        outage=outage,
        limits=Limits(
            concurrency=concurrency or settings.schedule.concurrency,
            per_site=settings.schedule.per_site,
            poll_interval=settings.daemon.poll_interval.total_seconds(),
        ),
        clock=clock,
    )
    return Runtime(
        settings=settings,
        database=database,
        scanner_id=scanner_id,
        telemetry=telemetry,
        outage=outage,
        policy=policy,
        schedule=schedule,
        lockout=lockout,
        credentials=credentials,
        writer=writer,
        engine=engine,
    )
