"""Where the engine's work comes from: due hosts (the daemon) or a fixed selection (a sweep)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Protocol

from engine.scheduling import Schedule
from store.db import Database
from store.leases import WorkItem, claim_due, claim_hosts


class WorkSource(Protocol):
    trigger: str

    async def claim(
        self,
        *,
        limit: int,
        now: datetime,
        busy_sites: Collection[str],
        held_profiles: Collection[str],
        per_site: int,
    ) -> list[WorkItem]: ...

    def finished(self, host_id: int) -> None: ...

    @property
    def exhausted(self) -> bool: ...


class DueHosts:
    """The daemon's work: every host that is due, rescans first; scheduled scans only inside
    scan windows."""

    trigger = "schedule"

    def __init__(
        self,
        database: Database,
        *,
        owner: str,
        lease: timedelta,
        heartbeat_timeout: timedelta,
        schedule: Schedule,
    ) -> None:
        self.database = database
        self.owner = owner
        self.lease = lease
        self.heartbeat_timeout = heartbeat_timeout
        self.schedule = schedule

    async def claim(
        self,
        *,
        limit: int,
        now: datetime,
        busy_sites: Collection[str],
        held_profiles: Collection[str],
        per_site: int,
    ) -> list[WorkItem]:
        async with self.database.write() as session:
            return await claim_due(
                session,
                owner=self.owner,
                now=now,
                until=now + self.lease,
                dead_before=now - self.heartbeat_timeout,
                limit=limit,
                scheduled=self.schedule.in_window(now),
                busy_sites=busy_sites,
                held_profiles=held_profiles,
                per_site=per_site,
            )

    def finished(self, host_id: int) -> None:
        pass

    @property
    def exhausted(self) -> bool:
        return False  # a daemon's work never ends


class Selection:
    """A one-shot sweep: exactly these hosts, now, each once."""

    trigger = "sweep"

    def __init__(
        self,
        database: Database,
        *,
        owner: str,
        lease: timedelta,
        heartbeat_timeout: timedelta,
        host_ids: Collection[int],
    ) -> None:
        self.database = database
        self.owner = owner
        self.lease = lease
        self.heartbeat_timeout = heartbeat_timeout
        self.remaining = set(host_ids)
        self.total = len(self.remaining)
        self._claimed: set[int] = set()

    async def claim(
        self,
        *,
        limit: int,
        now: datetime,
        busy_sites: Collection[str],
        held_profiles: Collection[str],
        per_site: int,
    ) -> list[WorkItem]:
        async with self.database.write() as session:
            items = await claim_hosts(
                session,
                owner=self.owner,
                host_ids=self.remaining - self._claimed,
                now=now,
                until=now + self.lease,
                dead_before=now - self.heartbeat_timeout,
                limit=limit,
                busy_sites=busy_sites,
                held_profiles=held_profiles,
                per_site=per_site,
            )
        self._claimed.update(item.host_id for item in items)
        return items

    def finished(self, host_id: int) -> None:
        self.remaining.discard(host_id)
        self._claimed.discard(host_id)

    @property
    def exhausted(self) -> bool:
        return not self.remaining
