"""The scan engine: claims work and probes hosts within global and per-site limits."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError

from collectors.base import Collector, Outcome, ScanResult, Target, Timeouts
from collectors.credentials import CredentialError, Credentials
from engine.credential_book import CredentialBook
from engine.grading import CompletedScan
from engine.lockout import Admission, LockoutGuard
from engine.outage import Outage
from engine.policy_box import PolicyBox
from engine.sources import WorkSource
from engine.telemetry import Telemetry
from engine.writer import ResultWriter
from store.db import TRANSIENT
from store.leases import WorkItem
from store.suspensions import Suspension

log = logging.getLogger("cmscan.engine")


def deadline_margin(total: float) -> float:
    """A collector enforces its own deadline; this margin beyond it only catches a bug."""
    return min(5.0, max(1.0, total * 0.1))


@dataclass(frozen=True)
class Limits:
    concurrency: int
    per_site: int
    poll_interval: float = 1.0


class Engine:
    """Runs probes concurrently. One engine serves either the daemon or a one-shot sweep."""

    def __init__(
        self,
        *,
        collectors: Mapping[str, Collector],
        credentials: CredentialBook,
        policy: PolicyBox,
        timeouts: Timeouts,
        lockout: LockoutGuard,
        writer: ResultWriter,
        telemetry: Telemetry,
        outage: Outage,
        limits: Limits,
        clock: Callable[[], datetime],
        on_suspended: Callable[[Suspension], None] | None = None,
    ) -> None:
        self.collectors = collectors
        self.credentials = credentials
        self.policy = policy
        self.timeouts = timeouts
        self.lockout = lockout
        self.writer = writer
        self.telemetry = telemetry
        self.outage = outage
        self.limits = limits
        self.clock = clock
        self.on_suspended = on_suspended
        self._tasks: dict[asyncio.Task[None], WorkItem] = {}
        self._skipping: set[asyncio.Task[None]] = set()
        # Hosts claimed but not started yet. Claiming ahead of free slots means a finished
        # probe's slot is refilled at once, however long the next claim waits for the
        # database (behind the result writer's transaction on SQLite, for instance).
        self._ready: deque[WorkItem] = deque()
        self._source: WorkSource | None = None
        self._sites: Counter[str] = Counter()
        self._held_profiles: set[str] = set()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._batch = max(1, min(limits.concurrency // 10, 32))
        self._prefetch = max(self._batch, limits.concurrency // 2)
        self.started = 0

    def wake(self) -> None:
        """Claim now rather than at the next poll (a rescan was requested)."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def _wanted(self) -> int:
        """How many more hosts to claim: free slots plus the read-ahead, less what is held."""
        held = len(self._tasks) + len(self._skipping) + len(self._ready)
        return self.limits.concurrency + self._prefetch - held

    def _busy_sites(self) -> set[str]:
        # A practice with its limit in flight and a host waiting gets no more for now: the
        # waiting hosts refill its slots as they free, and more would only lengthen the
        # read-ahead with hosts that cannot start yet. (Those never starve the others: while
        # slots are free the engine keeps claiming, so they only add to the read-ahead.)
        waiting = Counter(item.site for item in self._ready if item.site)
        return {
            site
            for site in {*self._sites, *waiting}
            if self._sites[site] + waiting[site] > self.limits.per_site
        }

    async def run(
        self, source: WorkSource, stop: asyncio.Event, *, idle: Callable[[], None] | None = None
    ) -> None:
        """Claim and probe until `stop` is set, or until a finite source is exhausted.

        `idle` is called whenever there is no due work and nothing in flight: the daemon has
        caught up with its fleet (the "sweep completed" moment).
        """
        self._source = source
        delay = 0.0
        try:
            while not stop.is_set():
                claimed: list[WorkItem] = []
                asked = False  # whether the source answered this pass, so "nothing" is true
                wanted = self._wanted()
                if wanted > 0:
                    try:
                        claimed = await source.claim(
                            limit=wanted,
                            now=self.clock(),
                            busy_sites=self._busy_sites(),
                            held_profiles=self._held_profiles,
                            per_site=self.limits.per_site,
                        )
                        self.outage.succeeded()
                        asked = True
                        delay = 0.0
                    except TRANSIENT as exc:
                        delay = self.outage.failed(exc, doing="claiming hosts")
                    except DBAPIError as exc:
                        log.exception("claiming hosts failed: %s", type(exc.orig or exc).__name__)
                        delay = self.limits.poll_interval
                if stop.is_set():
                    break
                rescans = [item for item in claimed if item.rescan_request_id is not None]
                self._ready.extendleft(reversed(rescans))  # a person is waiting for these
                self._ready.extend(item for item in claimed if item.rescan_request_id is None)
                self._fill()
                if not claimed and not self._tasks and not self._skipping and not self._ready:
                    if source.exhausted:
                        return
                    # Said on every quiet pass, not only after work: a night outside the scan
                    # windows or an all-compliant fleet with nothing due is caught up, not
                    # stalled.
                    if asked and idle is not None:
                        idle()
                await self._pause(
                    delay or self.limits.poll_interval,
                    stop,
                    after_error=bool(delay),
                    came_back_empty=not claimed,
                )
        finally:
            # What was claimed but not started stays unscanned; the caller gives the leases
            # back, and finishing probes must not start more.
            self._ready.clear()
            self._source = None

    async def _pause(
        self, seconds: float, stop: asyncio.Event, *, after_error: bool, came_back_empty: bool
    ) -> None:
        """Wait for a wake-up, stop, the timeout, or room for a batch of claims (or nothing
        left in flight). Claiming after every finished probe would cost a database round trip
        per host; waiting for a handful of free places keeps claims batched. After a failed
        claim only the back-off, a wake-up or stop end the wait."""
        dry = not self._ready and self._tasks and self._wanted() >= self._batch
        if dry and not after_error and not came_back_empty:
            return  # the read-ahead ran dry while there is work: claim again at once
        self._wake.clear()
        self._room.clear()
        waiters = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
        if not after_error:
            waiters.append(asyncio.create_task(self._room.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _fill(self) -> None:
        """Start what waits in the read-ahead, in order, while slots are free; a host whose
        practice is at its limit, or whose credential is on probation, keeps its place."""
        if not self._ready or self._source is None:
            return
        now = self.clock()
        waiting: deque[WorkItem] = deque()
        while self._ready and len(self._tasks) < self.limits.concurrency:
            item = self._ready.popleft()
            if not self._launch(item, self._source, now):
                waiting.append(item)
        waiting.extend(self._ready)
        self._ready = waiting

    def _launch(self, item: WorkItem, source: WorkSource, now: datetime) -> bool:
        """Start probing (or skipping) one host; False if it has to wait."""
        if item.site and self._sites[item.site] >= self.limits.per_site:
            return False
        try:
            credentials = self.credentials.get(item.credential_profile)
        except CredentialError as exc:
            self._skip_soon(item, source, now, str(exc))
            return True
        if item.credential_profile in self._held_profiles:
            return False
        admission = self.lockout.admit(item.credential_profile, now)
        if admission is Admission.WAIT:
            # The credential is on probation and its budget is in flight: the host waits,
            # and claims leave this profile alone until one of those probes answers.
            self._held_profiles.add(item.credential_profile)
            return False
        if admission is Admission.SUSPENDED:
            suspension = self.lockout.suspended(now).get(item.credential_profile)
            why = suspension.reason if suspension else "too many authentication failures"
            self._skip_soon(
                item,
                source,
                now,
                f"credential suspended ({why}); not contacted. Resume with"
                f" `cmscan credentials resume {item.credential_profile}`",
            )
            return True
        task = asyncio.create_task(self._probe(item, credentials, source, now))
        self._tasks[task] = item
        if item.site:
            self._sites[item.site] += 1
        self.started += 1
        self.telemetry.in_flight.set(len(self._tasks))
        task.add_done_callback(self._finished)
        return True

    def _skip_soon(self, item: WorkItem, source: WorkSource, now: datetime, reason: str) -> None:
        task = asyncio.create_task(self._skip(item, source, now, reason))
        self._skipping.add(task)
        task.add_done_callback(self._skipped)

    def _skipped(self, task: asyncio.Task[None]) -> None:
        self._skipping.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("recording a skipped host failed", exc_info=task.exception())
        self._made_room()

    def _finished(self, task: asyncio.Task[None]) -> None:
        item = self._tasks.pop(task)
        if item.site:
            self._sites[item.site] -= 1
            if self._sites[item.site] <= 0:
                del self._sites[item.site]
        self._held_profiles.discard(item.credential_profile)
        self.telemetry.in_flight.set(len(self._tasks))
        if not task.cancelled() and task.exception() is not None:
            log.error("probe task for %s failed", item.hostname, exc_info=task.exception())
        self._fill()
        self._made_room()

    def _made_room(self) -> None:
        if self._wanted() >= self._batch or not (self._tasks or self._skipping):
            self._room.set()

    async def _skip(self, item: WorkItem, source: WorkSource, now: datetime, reason: str) -> None:
        """Record a host as auth_failed without contacting it."""
        result = ScanResult(
            Outcome.AUTH_FAILED, transport=item.transport, duration_s=0.0, reason=reason
        )
        await self._hand_on(item, source, now, now, result)

    async def _probe(
        self, item: WorkItem, credentials: Credentials, source: WorkSource, started: datetime
    ) -> None:
        target = Target(
            hostname=item.hostname,
            port=item.port,
            transport=item.transport,
            address=item.address,
            patterns=self.policy.policy.watched_patterns,
            on_authenticated=functools.partial(self._authenticated, item.credential_profile),
        )
        result = await self._collect(target, credentials)
        finished = self.clock()
        suspension = self.lockout.finished(
            item.credential_profile, outcome=result.outcome, now=finished
        )
        if suspension is not None:
            self._suspended(suspension)
        await self._hand_on(item, source, started, finished, result)

    def _authenticated(self, profile: str) -> None:
        if self.lockout.authenticated(profile) and profile in self._held_profiles:
            # Hosts waited while the password was unproven: start them, and claim more.
            self._held_profiles.discard(profile)
            self._fill()
            self._wake.set()

    async def _collect(self, target: Target, credentials: Credentials) -> ScanResult:
        collector = self.collectors.get(target.transport)
        if collector is None:
            return ScanResult(
                Outcome.PROTOCOL_ERROR,
                transport=target.transport,
                duration_s=0.0,
                reason=f"no collector for transport {target.transport!r}",
            )
        loop = asyncio.get_running_loop()
        begun = loop.time()
        try:
            return await asyncio.wait_for(
                collector.collect(target, credentials, self.timeouts),
                self.timeouts.total + deadline_margin(self.timeouts.total),
            )
        except TimeoutError:
            return ScanResult(
                Outcome.TIMEOUT,
                transport=target.transport,
                duration_s=loop.time() - begun,
                reason=f"no result within {self.timeouts.total:.0f} s",
            )
        except Exception as exc:  # a collector bug must cost one host, not the sweep
            log.exception("collector %s failed on %s", target.transport, target.hostname)
            return ScanResult(
                Outcome.PROTOCOL_ERROR,
                transport=target.transport,
                duration_s=loop.time() - begun,
                reason=f"internal error: {type(exc).__name__}",
            )

    def _suspended(self, suspension: Suspension) -> None:
        log.error(
            "credential profile %r suspended: %s. Hosts using it are skipped and recorded as"
            " auth_failed. Check the account (is it locked out in Active Directory?), fix the"
            " password, then run: cmscan credentials resume %s",
            suspension.profile,
            suspension.reason,
            suspension.profile,
        )
        self.writer.suspend(suspension)
        if self.on_suspended is not None:
            self.on_suspended(suspension)

    async def _hand_on(
        self,
        item: WorkItem,
        source: WorkSource,
        started: datetime,
        finished: datetime,
        result: ScanResult,
    ) -> None:
        self.telemetry.observe(
            transport=result.transport, outcome=result.outcome.value, seconds=result.duration_s
        )
        await self.writer.put(
            CompletedScan(
                host_id=item.host_id,
                hostname=item.hostname,
                ccg_code=item.ccg_code,
                started_at=started,
                finished_at=finished,
                result=result,
                trigger="rescan" if item.rescan_request_id is not None else source.trigger,
                rescan_request_id=item.rescan_request_id,
                claim_generation=item.claim_generation,
            )
        )
        source.finished(item.host_id)

    async def finish(self, grace: timedelta) -> int:
        """Let in-flight probes finish within `grace`; cancel the rest. Returns how many were
        cancelled (their hosts' leases are released by the caller and they are due again)."""
        running = {*self._tasks, *self._skipping}
        if not running:
            return 0
        _, pending = await asyncio.wait(running, timeout=grace.total_seconds())
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        return len(pending)
