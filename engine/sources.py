"""Where the engine's work comes from: due hosts (the daemon) or a fixed selection (a sweep)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Protocol

from engine.scheduling import Schedule
from store.db import Database
from store.hosts import practices_in_service
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
    """A one-shot sweep: exactly these hosts, now, each once.

    The sweep picks its candidates itself rather than sending every remaining id to the
    database with each claim (a 10,000-host sweep would bind 10,000 parameters a claim,
    hundreds of times). It takes the biggest practices first: with the per-practice limit,
    a big practice needs the most rounds, and starting it late would leave its last rounds
    running alone at the end of the sweep.
    """

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
        self._order: list[tuple[str, int]] | None = None  # (site, host id), in claim order

    async def _ordered(self) -> list[tuple[str, int]]:
        if self._order is None:
            async with self.database.read() as session:
                practices = await practices_in_service(session)
            # A host without a practice is a site of its own, as in the claim query.
            sites = {i: practices.get(i) or f"#{i}" for i in self.remaining}
            sizes = Counter(sites.values())
            self._order = sorted(
                ((site, i) for i, site in sites.items()),
                key=lambda entry: (-sizes[entry[0]], entry[0], entry[1]),
            )
        # Keep only hosts still to claim: what was claimed and scanned never comes back.
        self._order = [
            e for e in self._order if e[1] in self.remaining and e[1] not in self._claimed
        ]
        return self._order

    def _candidates(
        self, order: list[tuple[str, int]], *, limit: int, busy: Collection[str], per_site: int
    ) -> list[int]:
        taken: Counter[str] = Counter()
        chosen: list[int] = []
        for site, host_id in order:
            if site in busy or taken[site] >= per_site:
                continue
            taken[site] += 1
            chosen.append(host_id)
            if len(chosen) >= limit:
                break
        return chosen

    async def claim(
        self,
        *,
        limit: int,
        now: datetime,
        busy_sites: Collection[str],
        held_profiles: Collection[str],
        per_site: int,
    ) -> list[WorkItem]:
        order = await self._ordered()
        # Exactly as many as wanted: one held by another process, or by a credential on
        # probation, is left for a later claim.
        wanted = self._candidates(order, limit=limit, busy=set(busy_sites), per_site=per_site)
        if not wanted:
            return []
        async with self.database.write() as session:
            items = await claim_hosts(
                session,
                owner=self.owner,
                host_ids=wanted,
                now=now,
                until=now + self.lease,
                dead_before=now - self.heartbeat_timeout,
                limit=limit,
                busy_sites=(),
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
