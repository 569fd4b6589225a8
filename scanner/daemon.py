"""The cmscan daemon: scheduler, probe workers, batched writer and HTTP listener in one process."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import IO

import psycopg
from sqlalchemy.engine import make_url

from collectors.base import Collector
from config.settings import Settings, parse_listen
from engine.grading import CompletedScan, Transition
from engine.liveness import registered
from engine.runtime import Runtime, build_runtime, new_scanner_id
from engine.sources import DueHosts
from engine.waiving import regrade_lapsed_waivers
from exporters.http import HttpContext, bind, build_app, serve
from store import db, instances
from store.db import TRANSIENT
from store.leases import release_all
from store.model import utcnow
from store.policies import active_policy_version, get_active_policy
from store.rescans import NOTIFY_CHANNEL
from store.scans import prune_scans
from store.suspensions import active_suspensions

log = logging.getLogger("cmscan.daemon")

HOUSEKEEPING_SECONDS = 10.0
SUMMARY_SECONDS = 60.0


class DaemonError(Exception):
    """The daemon cannot start; the message says why and what to do."""


@contextlib.contextmanager
def single_daemon_lock(url: str) -> Iterator[None]:
    """SQLite: refuse a second daemon on the same database file.

    A lock held by the kernel (flock) disappears with its process, so a daemon killed with
    SIGKILL never leaves a stale lock behind. PostgreSQL needs no lock: replicas share work.
    """
    path = db.sqlite_path(url) if db.is_sqlite(url) else None
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + ".daemon.lock")
    handle: IO[str] = lock_path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise DaemonError(
            f"another cmscan daemon (pid {holder}) is using {db.redact(url)}; SQLite allows one"
            " daemon per database. Stop it, or move to PostgreSQL to run several."
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@dataclass
class _Summary:
    """Counts for the once-a-minute progress line."""

    outcomes: Counter[str]

    def record(self, scan: CompletedScan, transition: Transition | None) -> None:
        self.outcomes[scan.result.outcome.value] += 1
        log.debug(
            "scanned %s: %s%s",
            scan.hostname,
            scan.result.outcome.value,
            f" ({transition.status})" if transition else "",
            extra={
                "host": scan.hostname,
                "outcome": scan.result.outcome.value,
                "duration_s": round(scan.result.duration_s, 3),
            },
        )


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        collectors: Mapping[str, Collector],
        listen: str | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.settings = settings
        self.collectors = collectors
        self.listen = parse_listen(listen or settings.daemon.listen)
        self.concurrency = concurrency
        self.scanner_id = new_scanner_id("daemon")
        self.stop = asyncio.Event()
        self.bound_port: int | None = None
        self.ready = asyncio.Event()
        # Waivers that lapse while the daemon runs re-grade their hosts at once; those that
        # lapsed while it was down were graded at their next scan, or are caught here.
        self._waivers_checked = utcnow() - timedelta(days=1)

    async def run(self) -> None:
        """Run until `stop` is set (SIGTERM / SIGINT), then shut down cleanly."""
        settings = self.settings
        with single_daemon_lock(settings.database_url):
            await asyncio.to_thread(db.upgrade, settings.database_url)
            sock = bind(*self.listen)
            self.bound_port = sock.getsockname()[1]
            summary = _Summary(Counter())
            runtime = await build_runtime(
                settings,
                collectors=self.collectors,
                scanner_id=self.scanner_id,
                concurrency=self.concurrency,
                on_recorded=summary.record,
            )
            try:
                async with registered(
                    runtime.database,
                    instance_id=self.scanner_id,
                    kind=instances.DAEMON,
                    heartbeat=settings.daemon.heartbeat.total_seconds(),
                    telemetry=runtime.telemetry,
                ):
                    await self._serve(runtime, sock, summary)
            finally:
                await runtime.close()

    async def _serve(self, runtime: Runtime, sock: socket.socket, summary: _Summary) -> None:
        problems = runtime.credentials.problems
        for profile, problem in problems.items():
            log.error("credential profile %r cannot be used: %s", profile, problem)
        host = self.listen[0]
        log.info(
            "cmscan daemon %s started: database %s, listening on http://%s:%s, concurrency %d",
            self.scanner_id,
            db.redact(self.settings.database_url),
            host,
            self.bound_port,
            runtime.engine.limits.concurrency,
        )
        app = build_app(HttpContext(runtime.database, self.settings, runtime.telemetry.registry))
        writer_stop = asyncio.Event()
        http_stop = asyncio.Event()
        source = DueHosts(
            runtime.database,
            owner=self.scanner_id,
            lease=self.settings.daemon.lease,
            heartbeat_timeout=self.settings.daemon.heartbeat_timeout,
            schedule=runtime.schedule,
        )
        tasks = [
            asyncio.create_task(
                runtime.writer.run(
                    writer_stop, give_up_after=self.settings.daemon.grace.total_seconds()
                )
            ),
            asyncio.create_task(serve(app, sock, http_stop)),
            asyncio.create_task(self._housekeeping(runtime, summary)),
        ]
        if not runtime.database.sqlite:
            tasks.append(asyncio.create_task(self._listen_for_rescans(runtime)))
        self.ready.set()
        try:
            await runtime.engine.run(
                source, self.stop, idle=runtime.telemetry.sweep_completed.set_to_current_time
            )
        finally:
            cancelled = await runtime.engine.finish(self.settings.daemon.grace)
            if cancelled:
                log.warning(
                    "%d probes did not finish within the grace period; their hosts"
                    " will be scanned again",
                    cancelled,
                )
            writer_stop.set()
            await tasks[0]
            for task in tasks[2:]:
                task.cancel()
            # Let housekeeping and LISTEN finish cancelling before the engine is disposed.
            await asyncio.gather(*tasks[2:], return_exceptions=True)
            with contextlib.suppress(*TRANSIENT):
                async with runtime.database.write() as session:
                    released = await release_all(session, owner=self.scanner_id)
                log.info("released %d leases", released)
            http_stop.set()
            await tasks[1]
            log.info("cmscan daemon %s stopped", self.scanner_id)

    async def _housekeeping(self, runtime: Runtime, summary: _Summary) -> None:
        """Pick up what other processes changed: policy, suspensions, lapsed waivers; prune.
        (The heartbeat has a thread of its own: engine/liveness.py.)"""
        loop = asyncio.get_running_loop()
        last_summary = loop.time()
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            try:
                await self._refresh(runtime)
                runtime.outage.succeeded()
            except TRANSIENT as exc:
                runtime.outage.failed(exc, doing="housekeeping")
            except Exception:
                # Without this loop the daemon would stop seeing new policies and suspensions.
                log.exception("housekeeping failed; trying again in %.0f s", HOUSEKEEPING_SECONDS)
            if loop.time() - last_summary >= SUMMARY_SECONDS and summary.outcomes:
                counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.outcomes.items()))
                log.info(
                    "scanned %d hosts in the last minute: %s; %d in flight",
                    sum(summary.outcomes.values()),
                    counts,
                    runtime.engine.in_flight,
                )
                summary.outcomes.clear()
                last_summary = loop.time()

    async def _refresh(self, runtime: Runtime) -> None:
        now = utcnow()
        async with runtime.database.read() as session:
            version = await active_policy_version(session)
            # Compile the policy again only when someone applied a different one.
            if version is not None and version.content_hash != runtime.policy.policy.content_hash:
                policy = await get_active_policy(session)
                log.info("policy %s@%s is now active", policy.id, policy.content_hash[:8])
                runtime.policy.policy = policy
            suspended = {s.profile: s for s in await active_suspensions(session, now=now)}
        report = await regrade_lapsed_waivers(
            runtime.database, since=self._waivers_checked, now=now
        )
        self._waivers_checked = now
        if report is not None:
            log.info("re-graded hosts whose waivers expired")
        async with runtime.database.write() as session:
            # A few thousand rows a pass keeps each transaction short; old history drains
            # over successive passes.
            pruned = await prune_scans(session, before=now - self.settings.daemon.keep_scans)
        if pruned:
            log.info("pruned %d scans older than %s", pruned, self.settings.daemon.keep_scans)
        local = runtime.lockout.suspended(now)
        for profile in local.keys() - suspended.keys() - runtime.writer.unsaved_suspensions:
            log.info("credential profile %r resumed; its secret was read again", profile)
            runtime.credentials.reload(profile)
            runtime.lockout.resume(profile)
        for profile, suspension in suspended.items():
            if profile not in local:
                runtime.lockout.suspend(suspension)

    async def _listen_for_rescans(self, runtime: Runtime) -> None:
        """PostgreSQL: wake the engine the moment someone requests a rescan."""
        conninfo = make_url(self.settings.database_url).set(drivername="postgresql")
        delay = 1.0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo.render_as_string(hide_password=False), autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    delay = 1.0
                    async for _ in connection.notifies():
                        runtime.engine.wake()
            except (psycopg.Error, OSError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
