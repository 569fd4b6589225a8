"""Claims that end with their owner: heartbeats, takeover, fencing, dead predecessors."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from collectors.base import Outcome
from config.settings import SettingsError, load_settings
from engine.liveness import Heartbeat, process_running, registered
from engine.telemetry import Telemetry
from store import db, instances
from store.leases import claim_due
from store.model import HostState, Scan, ScannerInstance
from tests.daemon.test_work_store import LEASE, T0, add_hosts, completed, record

TIMEOUT = timedelta(seconds=15)


async def _register(database: db.Database, owner: str, *, heard_at: datetime = T0) -> None:
    async with database.write() as session:
        await instances.register(session, instance_id=owner, pid=1, now=T0)
    async with database.write() as session:
        await instances.heartbeat(session, instance_id=owner, now=heard_at)


async def _claim(database: db.Database, owner: str, *, at: timedelta, limit: int = 10) -> list:
    now = T0 + at
    async with database.write() as session:
        return await claim_due(
            session, owner=owner, now=now, until=now + LEASE, dead_before=now - TIMEOUT, limit=limit
        )


async def test_a_dead_owners_claims_are_taken_within_the_heartbeat_timeout(
    database: db.Database,
) -> None:
    await add_hosts(database, 6)
    await _register(database, "d1")
    await _register(database, "d2")
    first = await _claim(database, "d1", at=timedelta(0), limit=4)
    assert len(first) == 4
    # d1 is alive (heard from within the timeout): d2 gets only the rest.
    assert len(await _claim(database, "d2", at=timedelta(seconds=10))) == 2
    async with database.write() as session:
        await instances.heartbeat(session, instance_id="d2", now=T0 + timedelta(seconds=20))
    # 16 s after d1's last heartbeat, long before its 5-minute lease ends, d1 counts as dead.
    taken = await _claim(database, "d2", at=timedelta(seconds=16))
    assert {i.host_id for i in taken} == {i.host_id for i in first}
    assert all(i.claim_generation == 2 for i in taken)


async def test_a_stopped_owners_claims_are_free_at_once(database: db.Database) -> None:
    await add_hosts(database, 2)
    await _register(database, "d1")
    await _claim(database, "d1", at=timedelta(0))
    async with database.write() as session:
        await instances.stopped(session, instance_id="d1", now=T0 + timedelta(seconds=1))
    assert len(await _claim(database, "d2", at=timedelta(seconds=2))) == 2


async def test_a_result_under_an_ended_claim_does_not_overwrite_the_newer_one(
    database: db.Database,
) -> None:
    await add_hosts(database, 1)
    await _register(database, "d1")
    (old,) = await _claim(database, "d1", at=timedelta(0))
    # d1 falls silent; d2 takes the host over and records its scan first.
    await _register(database, "d2", heard_at=T0 + timedelta(seconds=20))
    (new,) = await _claim(database, "d2", at=timedelta(seconds=20))
    assert new.claim_generation == old.claim_generation + 1
    late = replace(
        completed(old, Outcome.UNREACHABLE, at=T0 + timedelta(seconds=21)),
        claim_generation=old.claim_generation,
    )
    fresh = replace(
        completed(new, at=T0 + timedelta(seconds=22)), claim_generation=new.claim_generation
    )
    assert (await record(database, [fresh], owner="d2"))[0] is not None
    assert await record(database, [late], owner="d1") == [None]
    async with database.read() as session:
        state = await session.get(HostState, new.host_id)
        scans = (await session.execute(sa.select(sa.func.count()).select_from(Scan))).scalar()
    assert state is not None
    assert state.status == "compliant"
    assert scans == 2  # the late one is kept as history, nothing more


async def test_a_late_result_of_a_claim_given_away_meanwhile_is_fenced(
    database: db.Database,
) -> None:
    await add_hosts(database, 1)
    await _register(database, "d1")
    (old,) = await _claim(database, "d1", at=timedelta(0))
    await _register(database, "d2", heard_at=T0 + timedelta(seconds=20))
    await _claim(database, "d2", at=timedelta(seconds=20))  # d2 holds it, still probing
    late = replace(completed(old, at=T0 + timedelta(seconds=21)), claim_generation=1)
    assert await record(database, [late], owner="d1") == [None]


async def test_a_restarted_daemon_frees_its_dead_predecessors_claims(
    database: db.Database,
) -> None:
    await add_hosts(database, 3)
    dead_pid = 2**22 + 12345  # above any pid the kernel hands out by default
    assert not process_running(dead_pid)
    async with database.write() as session:
        await instances.register(session, instance_id="old", pid=dead_pid, now=T0)
        await instances.register(session, instance_id="alive", pid=os.getpid(), now=T0)
    await _claim(database, "old", at=timedelta(0), limit=3)
    telemetry = Telemetry()
    async with (
        registered(
            database, instance_id="new", kind=instances.DAEMON, heartbeat=0.05, telemetry=telemetry
        ),
        database.read() as session,
    ):
        rows = {r.id: r for r in (await session.execute(sa.select(ScannerInstance))).scalars()}
        owners = list((await session.execute(sa.select(HostState.lease_owner))).scalars())
    assert rows["old"].stopped_at is not None
    assert owners == [None, None, None]
    # Our own pid under another name cannot be a live predecessor either.
    assert rows["alive"].stopped_at is not None


async def test_the_heartbeat_thread_keeps_beating_while_the_event_loop_is_blocked(
    database: db.Database,
) -> None:
    async with database.write() as session:
        await instances.register(session, instance_id="busy", pid=1, now=T0)
    telemetry = Telemetry()
    beat = Heartbeat(database.url, instance_id="busy", interval=0.1, telemetry=telemetry)
    beat.start()
    try:
        # A loop stuck for a second: a heartbeat on this loop would stall with it.
        time.sleep(1.0)  # noqa: ASYNC251
    finally:
        await asyncio.to_thread(beat.stop)
    async with database.read() as session:
        row = await session.get(ScannerInstance, "busy")
    assert row is not None
    assert row.heartbeat_at > T0
    samples = telemetry.registry.get_sample_value("cmscan_heartbeat_lag_seconds_count")
    assert samples is not None
    assert samples >= 5


def test_a_heartbeat_timeout_shorter_than_two_heartbeats_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CMSCAN_DAEMON__HEARTBEAT", "10s")
    monkeypatch.setenv("CMSCAN_DAEMON__HEARTBEAT_TIMEOUT", "15s")
    with pytest.raises(SettingsError) as caught:
        load_settings(config_file=None)
    assert "must be at least twice daemon.heartbeat" in str(caught.value)
