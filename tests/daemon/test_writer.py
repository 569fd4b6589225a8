"""The result writer: a result that cannot be stored costs that result, never the writer."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from engine import recording
from engine.grading import CompletedScan
from engine.outage import Outage
from engine.policy_box import PolicyBox
from engine.telemetry import Telemetry
from engine.writer import ResultWriter, WriterConfig
from policy import default_policy
from store import db
from store.leases import claim_due
from store.model import Scan
from store.suspensions import Suspension
from tests.daemon.test_work_store import LEASE, SCHEDULE, T0, add_hosts, completed


def writer_for(database: db.Database) -> ResultWriter:
    telemetry = Telemetry()
    writer = ResultWriter(
        database,
        scanner_id="d1",
        policy=PolicyBox(default_policy()),
        schedule=SCHEDULE,
        telemetry=telemetry,
        outage=Outage(database.url, telemetry),
        config=WriterConfig(batch_size=10, held_limit=10),
        clock=lambda: T0 + timedelta(seconds=3),
    )
    writer.rng = random.Random(1)
    return writer


async def test_a_result_that_fails_to_grade_costs_only_itself(
    database: db.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_hosts(database, 3)
    async with database.write() as session:
        items = await claim_due(session, owner="d1", now=T0, until=T0 + LEASE, limit=3)
    real_grade = recording.grade

    def grade(policy: Any, scan: CompletedScan, waived: Any = ()) -> Any:
        if scan.hostname == items[1].hostname:
            raise ValueError("facts this policy cannot grade")
        return real_grade(policy, scan, waived)

    def refuse(*_: Any, **__: Any) -> None:
        raise IntegrityError("INSERT INTO credential_suspension", {}, Exception("duplicate key"))

    monkeypatch.setattr(recording, "grade", grade)
    monkeypatch.setattr("engine.writer.record_suspension", refuse)
    writer = writer_for(database)
    recorded: list[str] = []
    writer.on_recorded = lambda scan, _: recorded.append(scan.hostname)
    for item in items:
        await writer.put(completed(item))
    writer.suspend(Suspension(profile="svc", at=T0, until=None, failures=3, reason="3 failures"))

    assert await writer.write_once()
    assert writer.pending == 0
    assert sorted(recorded) == sorted([items[0].hostname, items[2].hostname])
    async with database.read() as session:
        stored = (await session.execute(sa.select(sa.func.count()).select_from(Scan))).scalar()
    assert stored == 2
    # Every permit came back: the dropped result does not shrink the outage buffer.
    for _ in range(10):
        await asyncio.wait_for(writer.put(completed(items[0], at=T0 + timedelta(minutes=1))), 5)
    assert writer.pending == 10
