"""The engine with a scripted collector: limits, lockout guard, deadlines and bugs contained."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from collectors.base import Outcome, ScanResult, Target
from config.settings import Settings, load_settings
from engine.runtime import build_runtime
from engine.sweep import SweepTally, run_sweep
from inventory.spec import HostSpec
from scanner import daemon as daemon_module
from store import db
from store.hosts import apply_sync, plan_sync
from store.model import CredentialSuspension, HostState, Scan, utcnow
from tests.daemon.facts_samples import ready
from tests.daemon.fakes import FakeCollector

PASSWORD_ENV = "CMSCAN_TEST_ENGINE_PASSWORD"


@pytest.fixture
def settings(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(PASSWORD_ENV, "correct horse battery staple")
    db.upgrade(sqlite_url)
    return load_settings(
        overrides={
            "database_url": sqlite_url,
            "credentials": {"default": {"username": "svc-cmscan", "password_env": PASSWORD_ENV}},
            "timeouts": {"connect": 1, "operation": 2, "total": 3},
            "schedule": {"concurrency": 16, "per_site": 2},
            "daemon": {"poll_interval": "0.05s", "flush_interval": "0.05s"},
        }
    )


async def add_hosts(
    url: str, count: int, *, practices: int = 5, profile: str = "default"
) -> list[int]:
    specs = [
        HostSpec(
            hostname=f"A{81000 + i % practices:05d}-WS{i:03d}",
            practice_code=f"A{81000 + i % practices:05d}",
            ccg_code="00K",
            credential_profile=profile,
        )
        for i in range(count)
    ]
    database = db.Database(url)
    try:
        async with database.write() as session:
            plan = await plan_sync(session, specs=specs)
            await apply_sync(
                session,
                plan,
                specs=specs,
                source="test",
                now=utcnow(),
            )
        async with database.read() as session:
            return list((await session.execute(sa.select(HostState.host_id))).scalars())
    finally:
        await database.dispose()


async def sweep(
    settings: Settings, collector: FakeCollector, host_ids: list[int], **kwargs: Any
) -> tuple[SweepTally, bool]:
    runtime = await build_runtime(
        settings, collectors={"winrm": collector}, scanner_id="test-sweep", **kwargs
    )
    tally = SweepTally(total=len(host_ids))
    try:
        complete = await run_sweep(
            runtime,
            host_ids=host_ids,
            tally=tally,
            stop=asyncio.Event(),
            grace=timedelta(seconds=5),
        )
    finally:
        await runtime.close()
    return tally, complete


async def rows(url: str, query: Any) -> list[Any]:
    database = db.Database(url)
    try:
        async with database.read() as session:
            return list((await session.execute(query)).all())
    finally:
        await database.dispose()


async def test_a_sweep_scans_every_host_once_within_its_limits(settings: Settings) -> None:
    ids = await add_hosts(settings.database_url, 60)
    collector = FakeCollector(delay=0.02)
    tally, complete = await sweep(settings, collector, ids)
    assert complete
    assert tally.done == 60
    assert tally.outcomes == {"ok": 60}
    assert sorted(collector.contacted) == sorted(set(collector.contacted))
    assert collector.peak_total <= 16
    assert max(collector.peak_site.values()) <= 2  # a surgery's WAN link is not flooded
    leased = await rows(
        settings.database_url,
        sa.select(HostState.host_id).where(HostState.lease_owner.is_not(None)),
    )
    assert leased == []
    scans = await rows(settings.database_url, sa.select(Scan.trigger))
    assert {s.trigger for s in scans} == {"sweep"}


async def test_a_wrong_password_reaches_at_most_the_threshold(settings: Settings) -> None:
    ids = await add_hosts(settings.database_url, 500, practices=100)

    def reject(target: Target) -> ScanResult:
        return ScanResult(
            Outcome.AUTH_FAILED,
            transport=target.transport,
            duration_s=0.01,
            reason="the server rejected the credentials (HTTP 401)",
        )

    collector = FakeCollector(reject, delay=0.01)
    tally, complete = await sweep(settings, collector, ids, concurrency=256)
    assert complete
    assert len(collector.contacted) == 3
    assert tally.outcomes == {"auth_failed": 500}
    reasons = await rows(settings.database_url, sa.select(Scan.reason))
    assert sum("credential suspended" in r.reason for r in reasons) == 497
    suspended = await rows(settings.database_url, sa.select(CredentialSuspension.profile))
    assert [s.profile for s in suspended] == ["default"]


async def test_probation_ends_when_a_host_accepts_the_password_not_when_its_probe_ends(
    settings: Settings,
) -> None:
    ids = await add_hosts(settings.database_url, 40, practices=40)

    class AcceptsThenWorks(FakeCollector):
        async def collect(self, target: Target, credentials: Any, timeouts: Any) -> ScanResult:
            await asyncio.sleep(0.05)  # the handshake
            target.authenticated()
            return await super().collect(target, credentials, timeouts)

    collector = AcceptsThenWorks(delay=1.0)  # the script runs long after the handshake
    tally, complete = await sweep(settings, collector, ids, concurrency=64)
    assert complete
    assert tally.outcomes == {"ok": 40}
    # Probation admits 3; had it waited for a whole probe, no more than 3 would overlap.
    assert collector.peak_total == 40


async def test_hosts_with_an_unusable_profile_are_not_contacted(settings: Settings) -> None:
    ids = await add_hosts(settings.database_url, 3, profile="nosuch")
    collector = FakeCollector()
    tally, _ = await sweep(settings, collector, ids)
    assert collector.contacted == []
    assert tally.outcomes == {"auth_failed": 3}
    reasons = await rows(settings.database_url, sa.select(Scan.reason))
    assert {r.reason for r in reasons} == {
        "credential profile 'nosuch' is not configured (add [credentials.nosuch])"
    }


async def test_a_collector_that_hangs_or_crashes_costs_one_host(settings: Settings) -> None:
    ids = await add_hosts(settings.database_url, 6)

    def misbehave(target: Target) -> ScanResult:
        if target.hostname.endswith("000"):
            raise RuntimeError("collector bug")
        return ScanResult(
            Outcome.OK,
            transport="winrm",
            duration_s=0.0,
            facts=ready(),
        )

    class Hanging(FakeCollector):
        async def collect(self, target: Target, credentials: Any, timeouts: Any) -> ScanResult:
            if target.hostname.endswith("001"):
                await asyncio.sleep(3600)  # ignores its own deadline
            return await super().collect(target, credentials, timeouts)

    tally, complete = await sweep(settings, Hanging(misbehave), ids)
    assert complete
    assert tally.outcomes == {"ok": 4, "protocol_error": 1, "timeout": 1}


async def test_housekeeping_outlives_an_unexpected_error(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon_module, "HOUSEKEEPING_SECONDS", 0.01)
    daemon = daemon_module.Daemon(settings, collectors={})
    runtime = await build_runtime(settings, collectors={}, scanner_id=daemon.scanner_id)
    calls = 0
    twice = asyncio.Event()

    async def refresh(_: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("a stored policy this version cannot read")
        twice.set()

    monkeypatch.setattr(daemon, "_refresh", refresh)
    task = asyncio.create_task(daemon._housekeeping(runtime, daemon_module._Summary(Counter())))
    try:
        await asyncio.wait_for(twice.wait(), 5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runtime.close()


async def test_a_fleet_with_nothing_due_counts_as_caught_up(settings: Settings) -> None:
    # Outside the scan windows nothing can be claimed; the sweep-overdue alerts read this
    # moment, so it must be reported then too, not only after a burst of work.
    from engine.sources import DueHosts

    class WindowShut:
        def in_window(self, _now: object) -> bool:
            return False

    await add_hosts(settings.database_url, 3)  # never scanned: due as soon as a window opens
    runtime = await build_runtime(settings, collectors={"winrm": FakeCollector()}, scanner_id="t")
    stop = asyncio.Event()
    caught_up = asyncio.Event()
    source = DueHosts(
        runtime.database,
        owner="t",
        lease=settings.daemon.lease,
        heartbeat_timeout=settings.daemon.heartbeat_timeout,
        schedule=WindowShut(),  # type: ignore[arg-type]
    )
    task = asyncio.create_task(runtime.engine.run(source, stop, idle=caught_up.set))
    try:
        await asyncio.wait_for(caught_up.wait(), 5)
        assert runtime.engine.started == 0
    finally:
        stop.set()
        await task
        await runtime.close()
