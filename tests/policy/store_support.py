"""Hosts with stored facts and verdicts, written straight into a test database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlmodel import col

from collectors.facts import Facts
from policy import Policy, evaluate
from store.db import Database
from store.model import Host, HostState, StatusChange

T0 = datetime(2025, 10, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Seed:
    hostname: str
    facts: Facts | dict[str, object] | None
    status: str | None = None  # default: the verdict of `policy` on the facts
    ccg: str | None = "00K"
    practice: str | None = "A81001"
    retired: bool = False


async def seed(db: Database, policy: Policy, hosts: list[Seed]) -> dict[str, int]:
    """Insert hosts graded by `policy` as a daemon would have left them; return their ids."""
    ids = {}
    async with db.write() as session:
        for spec in hosts:
            host = Host(
                hostname=spec.hostname,
                port=5985,
                transport="winrm",
                ccg_code=spec.ccg,
                practice_code=spec.practice,
                retired_at=T0 if spec.retired else None,
                first_seen_at=T0,
                last_seen_at=T0,
            )
            session.add(host)
            await session.flush()
            assert host.id is not None
            ids[spec.hostname] = host.id
            state = HostState(host_id=host.id, status_since=T0)
            if isinstance(spec.facts, Facts):
                verdict = evaluate(policy, spec.facts)
                state.facts = spec.facts.model_dump(mode="json")
                state.verdict = verdict.to_json()
                state.failing_rules = verdict.failing_ids
                state.advisories = verdict.advisory_ids
                state.policy_id = policy.id
                state.policy_hash = policy.content_hash
                state.status = verdict.status
                state.last_outcome = "ok"
            elif spec.facts is not None:
                state.facts = spec.facts
                state.status = "compliant"
            state.status = spec.status or state.status
            session.add(state)
    return ids


async def states(db: Database) -> dict[int, HostState]:
    async with db.read() as session:
        rows = (await session.execute(select(HostState))).scalars().all()
        return {row.host_id: row for row in rows}


async def changes(db: Database) -> list[tuple[int, str, str, str | None]]:
    async with db.read() as session:
        rows = (
            await session.execute(select(StatusChange).order_by(col(StatusChange.id)))
        ).scalars()
        return [(c.host_id, c.from_status, c.to_status, c.reason) for c in rows]
