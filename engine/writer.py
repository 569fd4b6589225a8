"""The result writer: finished scans go to the database in batches, surviving database outages."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import DBAPIError

from engine.grading import CompletedScan, Transition
from engine.outage import Outage
from engine.policy_box import PolicyBox
from engine.recording import record_scans
from engine.scheduling import Schedule
from engine.telemetry import Telemetry
from store.db import TRANSIENT, Database
from store.suspensions import Suspension, record_suspension
from store.waivers import active_waivers

log = logging.getLogger("cmscan.writer")


@dataclass
class WriterConfig:
    batch_size: int = 200
    flush_interval: float = 0.5
    held_limit: int = 20_000


@dataclass
class _Pending:
    scans: list[CompletedScan] = field(default_factory=list)
    suspensions: list[Suspension] = field(default_factory=list)


class ResultWriter:
    """Batches results into short transactions; holds them in memory while the database is away.

    `put` blocks once `held_limit` results wait, which stops the engine from claiming more
    work: memory stays bounded however long an outage lasts.
    """

    def __init__(
        self,
        database: Database,
        *,
        scanner_id: str,
        policy: PolicyBox,
        schedule: Schedule,
        telemetry: Telemetry,
        outage: Outage,
        config: WriterConfig,
        clock: Callable[[], datetime],
        on_recorded: Callable[[CompletedScan, Transition | None], None] | None = None,
    ) -> None:
        self.database = database
        self.scanner_id = scanner_id
        self.policy = policy
        self.schedule = schedule
        self.telemetry = telemetry
        self.outage = outage
        self.config = config
        self.clock = clock
        self.on_recorded = on_recorded
        self.rng = random.Random()
        self._held: deque[CompletedScan] = deque()
        # One permit per result that may wait in memory; a result gives its permit back
        # only once it is in the database.
        self._room = asyncio.Semaphore(config.held_limit)
        self._suspensions: list[Suspension] = []
        self._wake = asyncio.Event()
        self._delay = 0.0
        self.written = 0

    async def put(self, scan: CompletedScan) -> None:
        await self._room.acquire()
        self._held.append(scan)
        self.telemetry.results_held.set(len(self._held))
        if len(self._held) >= self.config.batch_size:
            self._wake.set()

    def suspend(self, suspension: Suspension) -> None:
        self._suspensions.append(suspension)
        self._wake.set()

    @property
    def unsaved_suspensions(self) -> set[str]:
        """Profiles suspended here whose suspension is not in the database yet."""
        return {suspension.profile for suspension in self._suspensions}

    @property
    def pending(self) -> int:
        return len(self._held) + len(self._suspensions)

    def _take(self) -> _Pending:
        batch = _Pending(suspensions=self._suspensions[:])
        self._suspensions.clear()
        while len(batch.scans) < self.config.batch_size and self._held:
            batch.scans.append(self._held.popleft())
        return batch

    def _give_back(self, batch: _Pending) -> None:
        self._suspensions[:0] = batch.suspensions
        self._held.extendleft(reversed(batch.scans))  # keep them first, in order

    async def run(self, stop: asyncio.Event, *, give_up_after: float | None = None) -> None:
        """Write batches until `stop` is set and everything pending is written; if the database
        stays away, stop retrying `give_up_after` seconds after `stop` (None: never)."""
        loop = asyncio.get_running_loop()
        stopped_at: float | None = None
        while True:
            if stop.is_set() and stopped_at is None:
                stopped_at = loop.time()
            if (
                stopped_at is not None
                and give_up_after is not None
                and self.pending
                and (loop.time() - stopped_at > give_up_after)
            ):
                log.error(
                    "gave up writing %d results: the database is still unavailable", len(self._held)
                )
                return
            if not self.pending:
                if stop.is_set():
                    return
                self._wake.clear()
                waiter = asyncio.create_task(self._wake.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait(
                    {waiter, stopper},
                    timeout=self.config.flush_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiter.cancel()
                stopper.cancel()
                continue
            if not await self.write_once():
                await asyncio.sleep(self._delay)

    async def write_once(self) -> bool:
        """Write one batch; False if the database is unavailable (the batch is kept)."""
        batch = self._take()
        try:
            await self._write(batch)
        except TRANSIENT as exc:
            self._give_back(batch)
            self._delay = self.outage.failed(exc, doing="writing results")
            return False
        except Exception as exc:
            # Not an outage: one of these results cannot be stored (a row the database
            # refuses, or a result that fails to grade). Write them one by one so that only
            # the bad one is lost, and say which; the writer itself must keep going.
            leftover = await self._write_singly(batch, exc)
            if leftover is not None:
                self._release(len(batch.scans) - len(leftover.scans))
                self._give_back(leftover)
                return False
        self.outage.succeeded()
        self._release(len(batch.scans))
        return True

    def _release(self, count: int) -> None:
        for _ in range(count):
            self._room.release()
        self.telemetry.results_held.set(len(self._held))

    async def _write(self, batch: _Pending) -> None:
        now = self.clock()
        async with self.database.write() as session:
            for suspension in batch.suspensions:
                await record_suspension(session, suspension)
            if not batch.scans:
                return
            waivers = await active_waivers(
                session, host_ids=[scan.host_id for scan in batch.scans], now=now
            )
            transitions = await record_scans(
                session,
                scans=batch.scans,
                scanner_id=self.scanner_id,
                policy=self.policy.policy,
                schedule=self.schedule,
                rng=self.rng,
                waivers=waivers,
                now=now,
            )
        self.written += len(batch.scans)
        superseded = sum(1 for transition in transitions if transition is None)
        if superseded:
            self.telemetry.results_superseded.inc(superseded)
        if self.on_recorded is not None:
            # Committed: a failing callback must not make the batch look unwritten.
            for scan, transition in zip(batch.scans, transitions, strict=True):
                try:
                    self.on_recorded(scan, transition)
                except Exception:
                    log.exception("reporting the result for %s failed", scan.hostname)

    async def _write_singly(self, batch: _Pending, first: Exception) -> _Pending | None:
        """Write a refused batch row by row; returns what is left if the database goes away."""
        log.error(
            "a batch of %d results was refused (%s); writing them one by one",
            len(batch.scans),
            _describe(first),
            exc_info=not isinstance(first, DBAPIError),
        )
        for index, scan in enumerate(batch.scans):
            try:
                await self._write(_Pending(scans=[scan]))
            except TRANSIENT as exc:
                self._delay = self.outage.failed(exc, doing="writing results")
                return _Pending(scans=batch.scans[index:], suspensions=batch.suspensions)
            except Exception as exc:
                log.error("dropped the result for %s: %s", scan.hostname, _describe(exc))
        if batch.suspensions:
            try:
                await self._write(_Pending(suspensions=batch.suspensions))
            except TRANSIENT as exc:
                self._delay = self.outage.failed(exc, doing="writing results")
                return _Pending(suspensions=batch.suspensions)
            except Exception as exc:
                # Most often another replica stored this profile's suspension a moment
                # earlier; every replica, this one included, follows the stored one.
                profiles = ", ".join(s.profile for s in batch.suspensions)
                log.error("could not store the suspension of %s: %s", profiles, _describe(exc))
        return None


def _describe(exc: BaseException) -> str:
    """One line on why a result could not be stored: the driver's message, not the SQL."""
    detail = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return f"{type(detail).__name__}: {' '.join(str(detail).split())[:300]}"
