"""One-shot sweeps: scan a selection of hosts now, count what happened, and stop."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta

from collectors.base import Outcome
from engine.grading import CompletedScan, Transition
from engine.liveness import registered
from engine.runtime import Runtime
from engine.sources import Selection
from store import instances
from store.db import TRANSIENT
from store.leases import release_all

log = logging.getLogger("cmscan.sweep")


@dataclass
class SweepTally:
    """Running counts of a sweep, for the progress display and the final summary."""

    total: int
    outcomes: Counter[str] = field(default_factory=Counter)
    by_ccg: dict[str, Counter[str]] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return sum(self.outcomes.values())

    @property
    def failed(self) -> int:
        return self.done - self.outcomes[Outcome.OK]

    def record(self, scan: CompletedScan, transition: Transition | None) -> None:
        self.outcomes[scan.result.outcome.value] += 1
        status = transition.status if transition is not None else "superseded"
        self.by_ccg.setdefault(scan.ccg_code or "-", Counter())[status] += 1


async def run_sweep(
    runtime: Runtime,
    *,
    host_ids: Collection[int],
    tally: SweepTally,
    stop: asyncio.Event,
    grace: timedelta,
) -> bool:
    """Scan every host once; True if all were scanned, False if interrupted first."""
    runtime.writer.on_recorded = tally.record
    daemon_settings = runtime.settings.daemon
    source = Selection(
        runtime.database,
        owner=runtime.scanner_id,
        lease=daemon_settings.lease,
        heartbeat_timeout=daemon_settings.heartbeat_timeout,
        host_ids=host_ids,
    )
    # Registered like a daemon, so that a daemon sweeping beside it leaves its claims alone
    # while it lives, and takes them over once it dies.
    async with registered(
        runtime.database,
        instance_id=runtime.scanner_id,
        kind=instances.ONE_SHOT,
        heartbeat=daemon_settings.heartbeat.total_seconds(),
        telemetry=runtime.telemetry,
    ):
        writer_stop = asyncio.Event()
        # Stopped during a database outage, the writer retries for the grace period and then
        # gives up (the hosts stay unscanned in the database) instead of waiting for ever.
        writer = asyncio.create_task(
            runtime.writer.run(writer_stop, give_up_after=grace.total_seconds())
        )
        try:
            await runtime.engine.run(source, stop)
            await runtime.engine.finish(grace)
        finally:
            writer_stop.set()
            await writer
            try:
                async with runtime.database.write() as session:
                    await release_all(session, owner=runtime.scanner_id)
            except TRANSIENT as exc:
                # The leases end by themselves; this must not hide why the sweep ended.
                log.warning("could not release this sweep's leases: %s", type(exc).__name__)
    if not source.exhausted:
        return False
    runtime.telemetry.sweep_completed.set_to_current_time()
    return True
