"""Leases, scan recording, rescans and suspensions, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from collectors.base import Outcome, ScanResult
from engine.grading import CompletedScan
from engine.recording import record_scans
from engine.scheduling import Schedule
from inventory.spec import HostSpec
from policy import default_policy
from store import db
from store.hosts import apply_sync, find_host, plan_sync
from store.leases import WorkItem, claim_due, claim_hosts, count_due, release, release_all
from store.model import HostState, RescanRequest, Scan, StatusChange
from store.rescans import RescanError, Selector, request_rescan, rescan_results
from store.scans import prune_scans
from store.suspensions import Suspension, active_suspensions, record_suspension, resume_profile
from tests.daemon.facts_samples import missing_cm, ready

T0 = datetime(2026, 11, 24, 9, tzinfo=UTC)
LEASE = timedelta(minutes=5)
SCHEDULE = Schedule(
    timedelta(hours=24), timedelta(hours=4), timedelta(minutes=30), timedelta(hours=8)
)


async def add_hosts(database: db.Database, count: int, *, practices: int = 1) -> None:
    specs = [
        HostSpec(
            hostname=f"pc{i:04d}", practice_code=f"A{81000 + i % practices:05d}", ccg_code="00K"
        )
        for i in range(count)
    ]
    async with database.write() as session:
        plan = await plan_sync(session, specs=specs)
        await apply_sync(session, plan, specs=specs, source="test", now=T0)


def completed(
    item: WorkItem,
    outcome: Outcome = Outcome.OK,
    *,
    facts_ok: bool = True,
    at: datetime = T0,
    trigger: str = "schedule",
) -> CompletedScan:
    facts = (ready() if facts_ok else missing_cm()) if outcome is Outcome.OK else None
    return CompletedScan(
        host_id=item.host_id,
        hostname=item.hostname,
        ccg_code=item.ccg_code,
        started_at=at,
        finished_at=at + timedelta(seconds=2),
        result=ScanResult(
            outcome=outcome,
            transport="winrm",
            duration_s=2.0,
            reason="" if facts else "connection refused",
            facts=facts,
        ),
        trigger=trigger,
        rescan_request_id=item.rescan_request_id,
    )


async def record(database: db.Database, scans: list[CompletedScan], owner: str = "d1") -> list:
    async with database.write() as session:
        return await record_scans(
            session,
            scans=scans,
            scanner_id=owner,
            policy=default_policy(),
            schedule=SCHEDULE,
            rng=random.Random(1),
            waivers={},
            now=T0 + timedelta(seconds=3),
        )


async def test_claims_lease_hosts_once(database: db.Database) -> None:
    await add_hosts(database, 10)
    async with database.write() as session:
        first = await claim_due(session, owner="d1", now=T0, until=T0 + LEASE, limit=6)
    async with database.write() as session:
        second = await claim_due(session, owner="d2", now=T0, until=T0 + LEASE, limit=6)
    assert len(first) == 6
    assert len(second) == 4
    assert not {i.host_id for i in first} & {i.host_id for i in second}
    # An expired lease is free again: a daemon killed with SIGKILL does not strand hosts.
    async with database.write() as session:
        taken_over = await claim_due(
            session,
            owner="d3",
            now=T0 + LEASE + timedelta(seconds=1),
            until=T0 + 2 * LEASE,
            limit=20,
        )
    assert len(taken_over) == 10


async def test_release_returns_hosts(database: db.Database) -> None:
    await add_hosts(database, 3)
    async with database.write() as session:
        items = await claim_due(session, owner="d1", now=T0, until=T0 + LEASE, limit=3)
        await release(session, owner="d1", host_ids=[items[0].host_id])
    async with database.write() as session:
        again = await claim_due(session, owner="d2", now=T0, until=T0 + LEASE, limit=3)
        assert [i.host_id for i in again] == [items[0].host_id]
        assert await release_all(session, owner="d1") == 2


async def test_busy_sites_and_held_profiles_are_skipped(database: db.Database) -> None:
    await add_hosts(database, 6, practices=3)
    async with database.write() as session:
        items = await claim_due(
            session,
            owner="d1",
            now=T0,
            until=T0 + LEASE,
            limit=10,
            busy_sites={"A81000"},
            held_profiles=(),
        )
        assert {i.practice_code for i in items} == {"A81001", "A81002"}
        none = await claim_due(
            session, owner="d1", now=T0, until=T0 + LEASE, limit=10, held_profiles={"default"}
        )
        assert none == []


async def test_recording_results_sets_status_history_and_next_due(database: db.Database) -> None:
    await add_hosts(database, 3)
    async with database.write() as session:
        items = await claim_due(session, owner="d1", now=T0, until=T0 + LEASE, limit=3)
    transitions = await record(
        database,
        [
            completed(items[0]),
            completed(items[1], facts_ok=False),
            completed(items[2], Outcome.UNREACHABLE),
        ],
    )
    assert [t.status for t in transitions] == ["compliant", "noncompliant", "unreachable"]
    async with database.read() as session:
        states = {s.host_id: s for s in (await session.execute(sa.select(HostState))).scalars()}
        changes = (await session.execute(sa.select(StatusChange))).scalars().all()
    good, bad, off = (states[i.host_id] for i in items)
    assert good.lease_owner is None
    assert good.next_due_at == T0 + timedelta(seconds=2) + timedelta(hours=24)
    assert bad.failing_rules == ["cm-installed"]
    assert bad.next_due_at == T0 + timedelta(seconds=2) + timedelta(hours=4)
    assert off.consecutive_failures == 1
    assert off.next_due_at == T0 + timedelta(seconds=2) + timedelta(minutes=30)
    assert off.facts is None
    assert sorted((c.from_status, c.to_status) for c in changes) == [
        ("unknown", "compliant"),
        ("unknown", "noncompliant"),
        ("unknown", "unreachable"),
    ]


async def test_a_failed_scan_keeps_the_last_good_facts(database: db.Database) -> None:
    await add_hosts(database, 1)
    async with database.write() as session:
        (item,) = await claim_due(session, owner="d1", now=T0, until=T0 + LEASE, limit=1)
    await record(database, [completed(item)])
    later = T0 + timedelta(days=1)
    await record(database, [completed(item, Outcome.TIMEOUT, at=later)])
    async with database.read() as session:
        state = await session.get(HostState, item.host_id)
    assert state is not None
    assert state.status == "unreachable"
    assert state.facts is not None
    assert state.last_success_at == T0 + timedelta(seconds=2)
    assert state.last_outcome == "timeout"


async def test_an_older_result_never_overwrites_a_newer_one(database: db.Database) -> None:
    await add_hosts(database, 1)
    async with database.write() as session:
        (item,) = await claim_due(session, owner="d1", now=T0, until=T0 + LEASE, limit=1)
    await record(database, [completed(item, at=T0 + timedelta(minutes=10))])
    (stale,) = await record(database, [completed(item, Outcome.UNREACHABLE, at=T0)])
    assert stale is None
    async with database.read() as session:
        state = await session.get(HostState, item.host_id)
    assert state is not None
    assert state.status == "compliant"


async def test_rescans_jump_the_queue_and_complete(database: db.Database) -> None:
    await add_hosts(database, 5)
    async with database.write() as session:
        items = await claim_due(session, owner="d1", now=T0, until=T0 + LEASE, limit=5)
    await record(database, [completed(i) for i in items])
    async with database.write() as session:
        assert await count_due(session, now=T0 + timedelta(minutes=1)) == 0
        request = await request_rescan(
            session,
            selector=Selector(hosts=("PC0003",)),
            requested_by="alice",
            now=T0 + timedelta(minutes=1),
        )
    async with database.write() as session:
        assert await count_due(session, now=T0 + timedelta(minutes=1)) == 1
        (item,) = await claim_due(
            session,
            owner="d1",
            now=T0 + timedelta(minutes=1),
            until=T0 + LEASE * 2,
            limit=5,
            scheduled=False,
        )
    assert (item.hostname, item.rescan_request_id) == ("pc0003", request.id)
    await record(
        database, [completed(item, facts_ok=False, at=T0 + timedelta(minutes=2), trigger="rescan")]
    )
    async with database.read() as session:
        assert request.id is not None
        done, results = await rescan_results(session, request_id=request.id)
    assert done is not None
    assert (done.state, done.done_count) == ("done", 1)
    assert [(r.hostname, r.status, r.failing_rules) for r in results] == [
        ("pc0003", "noncompliant", ("cm-installed",))
    ]


async def test_a_newer_rescan_takes_over_waiting_hosts(database: db.Database) -> None:
    await add_hosts(database, 4)
    async with database.write() as session:
        old = await request_rescan(session, selector=Selector(ccg="00k"), requested_by="a", now=T0)
        new = await request_rescan(
            session, selector=Selector(hosts=("pc0001",)), requested_by="b", now=T0
        )
    async with database.read() as session:
        reloaded = await session.get(RescanRequest, old.id)
    assert reloaded is not None
    assert reloaded.host_count == 3
    assert new.host_count == 1


async def test_a_scan_in_flight_when_a_newer_rescan_takes_its_host_counts_once(
    database: db.Database,
) -> None:
    await add_hosts(database, 2)
    async with database.write() as session:
        old = await request_rescan(session, selector=Selector(ccg="00K"), requested_by="a", now=T0)
    async with database.write() as session:
        (first,) = await claim_due(
            session, owner="d1", now=T0, until=T0 + LEASE, limit=1, scheduled=False
        )
    async with database.write() as session:
        new = await request_rescan(
            session, selector=Selector(hosts=(first.hostname,)), requested_by="b", now=T0
        )
    await record(database, [completed(first, trigger="rescan")])
    async with database.read() as session:
        reloaded = await session.get(RescanRequest, old.id)
        state = await session.get(HostState, first.host_id)
    assert reloaded is not None
    assert state is not None
    # The other host of the older request has not been scanned: it is not done yet.
    assert (reloaded.state, reloaded.done_count, reloaded.host_count) == ("pending", 0, 1)
    assert state.rescan_request_id == new.id


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (Selector(), "say which hosts"),
        (Selector(hosts=("nosuch",)), "not in the inventory: nosuch"),
        (Selector(ccg="99Z"), "no host in service matches ccg 99Z"),
        (Selector(status="green"), "unknown status 'green'"),
    ],
)
async def test_bad_rescan_requests(database: db.Database, selector: Selector, message: str) -> None:
    await add_hosts(database, 1)
    with pytest.raises(RescanError, match=message):
        async with database.write() as session:
            await request_rescan(session, selector=selector, requested_by="a", now=T0)


async def test_suspensions_are_shared_and_resumable(database: db.Database) -> None:
    suspension = Suspension(profile="svc", at=T0, until=None, failures=3, reason="3 failures")
    async with database.write() as session:
        await record_suspension(session, suspension)
    async with database.read() as session:
        assert await active_suspensions(session, now=T0) == [suspension]
    async with database.write() as session:
        assert await resume_profile(session, profile="svc")
        assert not await resume_profile(session, profile="svc")


async def test_a_new_suspension_replaces_one_a_cooldown_lifted(database: db.Database) -> None:
    lifted = Suspension(
        profile="svc", at=T0, until=T0 + timedelta(minutes=30), failures=3, reason="first"
    )
    later = T0 + timedelta(hours=1)
    again = Suspension(
        profile="svc", at=later, until=later + timedelta(minutes=30), failures=3, reason="again"
    )
    async with database.write() as session:
        await record_suspension(session, lifted)
    async with database.write() as session:
        await record_suspension(session, again)
    async with database.read() as session:
        assert await active_suspensions(session, now=later) == [again]


async def test_a_short_name_is_matched_literally(database: db.Database) -> None:
    specs = [HostSpec(hostname="pcx1.a.nhs.uk")]
    async with database.write() as session:
        await apply_sync(
            session, await plan_sync(session, specs=specs), specs=specs, source="t", now=T0
        )
    async with database.read() as session:
        # "_" and "%" are LIKE wildcards; a short name must not find a different machine.
        assert await find_host(session, name="pc_1") is None
        assert await find_host(session, name="pc%") is None
        found = await find_host(session, name="pcx1")
    assert found is not None
    assert found.hostname == "pcx1.a.nhs.uk"


async def test_concurrent_claims_on_postgresql_never_overlap(postgres_url: str) -> None:
    db.upgrade(postgres_url)
    database = db.Database(postgres_url)
    try:
        await add_hosts(database, 300)

        async def claimer(owner: str) -> list[int]:
            got: list[int] = []
            while True:
                async with database.write() as session:
                    items = await claim_due(session, owner=owner, now=T0, until=T0 + LEASE, limit=7)
                if not items:
                    return got
                got.extend(i.host_id for i in items)

        claimed = await asyncio.gather(*(claimer(f"d{n}") for n in range(4)))
        flat = [host_id for ids in claimed for host_id in ids]
        assert len(flat) == len(set(flat)) == 300
    finally:
        await database.dispose()


async def test_sweeps_claim_their_selection_but_not_leased_hosts(database: db.Database) -> None:
    await add_hosts(database, 4)
    async with database.write() as session:
        (busy,) = await claim_due(session, owner="daemon", now=T0, until=T0 + LEASE, limit=1)
        ids = {busy.host_id, busy.host_id + 1, busy.host_id + 2}
        items = await claim_hosts(
            session, owner="sweep", host_ids=ids, now=T0, until=T0 + LEASE, limit=10
        )
    assert {i.host_id for i in items} == ids - {busy.host_id}


async def test_scans_keep_facts_only_when_they_changed(database: db.Database) -> None:
    await add_hosts(database, 1)
    async with database.write() as session:
        (item,) = await claim_due(session, owner="d1", now=T0, until=T0 + LEASE, limit=1)
    times = [T0 + timedelta(hours=h) for h in range(4)]
    await record(database, [completed(item, at=times[0])])
    await record(database, [completed(item, at=times[1])])  # the same facts again
    await record(database, [completed(item, Outcome.UNREACHABLE, at=times[2])])
    await record(database, [completed(item, facts_ok=False, at=times[3])])  # CM removed
    async with database.read() as session:
        kept = (await session.execute(sa.select(Scan.facts).order_by(Scan.started_at))).all()
    assert [row.facts is not None for row in kept] == [True, False, False, True]


async def test_old_scans_are_pruned_but_never_a_hosts_latest(database: db.Database) -> None:
    await add_hosts(database, 2)
    async with database.write() as session:
        items = await claim_due(session, owner="d1", now=T0, until=T0 + LEASE, limit=2)
    await record(database, [completed(items[0], at=T0), completed(items[1], at=T0)])
    await record(database, [completed(items[0], at=T0 + timedelta(days=200))])
    async with database.write() as session:
        pruned = await prune_scans(session, before=T0 + timedelta(days=100))
    assert pruned == 1  # items[0]'s first scan; items[1]'s only scan is its latest
    async with database.read() as session:
        left = (await session.execute(sa.select(Scan.host_id, Scan.started_at))).all()
    assert sorted((row.host_id, row.started_at) for row in left) == sorted(
        [(items[0].host_id, T0 + timedelta(days=200)), (items[1].host_id, T0)]
    )


async def test_a_failed_scan_stores_no_facts_as_sql_null(database: db.Database) -> None:
    await add_hosts(database, 1)
    async with database.write() as session:
        (item,) = await claim_due(session, owner="d1", now=T0, until=T0 + LEASE, limit=1)
    await record(database, [completed(item, Outcome.UNREACHABLE)])
    async with database.read() as session:
        missing = await session.execute(
            sa.select(sa.func.count()).select_from(Scan).where(Scan.facts.is_(None))
        )
        assert missing.scalar_one() == 1
