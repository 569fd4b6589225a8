"""Liveness: register this process, heartbeat from a thread of its own, free dead ones' claims."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import AsyncIterator

from engine.telemetry import Telemetry
from store import instances
from store.db import TRANSIENT, Database, describe_error
from store.model import utcnow

log = logging.getLogger("cmscan.liveness")


def process_running(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (signal 0 probes without harm)."""
    if pid == os.getpid():
        return False  # a predecessor cannot be us: our pid was free when we started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


class Heartbeat:
    """Refreshes this process's heartbeat every `interval` seconds from a thread with its own
    event loop and database connection: a main loop busy with thousands of probes, or a pool
    held by the writer, cannot make a live daemon look dead."""

    def __init__(
        self, database_url: str, *, instance_id: str, interval: float, telemetry: Telemetry
    ) -> None:
        self.database_url = database_url
        self.instance_id = instance_id
        self.interval = interval
        self.telemetry = telemetry
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cmscan-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 30)

    def _run(self) -> None:
        asyncio.run(self._beat())

    async def _beat(self) -> None:
        database = Database(self.database_url)
        failing = False
        due = time.monotonic() + self.interval
        try:
            while not self._stop.wait(max(0.0, due - time.monotonic())):
                try:
                    async with database.write() as session:
                        await instances.heartbeat(
                            session, instance_id=self.instance_id, now=utcnow()
                        )
                except TRANSIENT as exc:
                    if not failing:
                        log.warning(
                            "could not write this process's heartbeat (%s); after"
                            " daemon.heartbeat_timeout the others take over its hosts",
                            describe_error(exc, self.database_url),
                        )
                    failing = True
                else:
                    if failing:
                        log.info("heartbeat written again")
                    failing = False
                # How late the beat landed: scheduling, the GIL and the database together.
                self.telemetry.heartbeat_lag.observe(max(0.0, time.monotonic() - due))
                due = max(due + self.interval, time.monotonic())
        finally:
            await database.dispose()


@contextlib.asynccontextmanager
async def registered(
    database: Database,
    *,
    instance_id: str,
    kind: str,
    heartbeat: float,
    telemetry: Telemetry,
) -> AsyncIterator[None]:
    """Register this process, free the claims of dead predecessors on this machine, keep the
    heartbeat going while the block runs, and mark the process stopped after it."""
    now = utcnow()
    async with database.write() as session:
        await instances.register(
            session, instance_id=instance_id, pid=os.getpid(), kind=kind, now=now
        )
        freed = await instances.free_dead_predecessors(
            session,
            hostname=socket.gethostname(),
            running=process_running,
            keep=instance_id,
            now=now,
        )
    for dead, leases in freed:
        log.warning(
            "%s is no longer running on this machine: gave back the %d hosts it had claimed",
            dead,
            leases,
        )
    beat = Heartbeat(database.url, instance_id=instance_id, interval=heartbeat, telemetry=telemetry)
    beat.start()
    try:
        yield
    finally:
        await asyncio.to_thread(beat.stop)
        with contextlib.suppress(*TRANSIENT):
            async with database.write() as session:
                await instances.stopped(session, instance_id=instance_id, now=utcnow())
