"""The active policy, and re-grading every host's stored facts when a policy or waiver changes."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from collectors.facts import Facts
from scanner.db import Database
from scanner.model import Host, HostState, PolicyVersion, Status, utcnow
from scanner.policy import Policy, default_policy, evaluate, load_policy_text
from scanner.store.history import set_status
from scanner.store.rescans import Selector, request_rescan
from scanner.store.waivers import active_waivers

# Hosts re-graded per transaction: large enough to amortise round trips, small enough that
# a daemon writing scan results next to a re-grade never waits long for the write lock.
BATCH = 1000
# Statuses a verdict may replace. A host whose last scan failed keeps saying so (unreachable,
# auth_failed, error) even though its older facts are re-graded.
GRADED = frozenset({Status.COMPLIANT, Status.NONCOMPLIANT, Status.UNKNOWN})
NO_CCG = ""


async def active_policy_version(session: AsyncSession) -> PolicyVersion | None:
    """The newest applied policy row, or None when none was ever applied."""
    query = select(PolicyVersion).order_by(col(PolicyVersion.id).desc()).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


async def get_active_policy(session: AsyncSession) -> Policy:
    """The policy every replica uses: the newest applied one, else the shipped default.

    Compiling is cached by content, so calling this often (say, once per sweep) is cheap.
    """
    row = await active_policy_version(session)
    if row is None:
        return default_policy()
    return load_policy_text(row.content, f"policy version {row.id}")


@dataclass(slots=True)
class CcgChanges:
    """Hosts of one CCG whose status a re-grade changed."""

    became_compliant: int = 0
    became_noncompliant: int = 0

    @property
    def total(self) -> int:
        return self.became_compliant + self.became_noncompliant


@dataclass(slots=True)
class RegradeReport:
    """What a re-grade did (or, in a dry run, would do)."""

    policy_id: str
    policy_hash: str
    dry_run: bool = False
    regraded: int = 0  # hosts whose stored facts were evaluated
    changed: int = 0  # hosts whose status changed
    by_ccg: dict[str, CcgChanges] = field(default_factory=dict)  # "" for hosts without a CCG
    unreadable: list[str] = field(default_factory=list)  # hostnames with unusable stored facts
    # Hosts probed without some pattern the policy watches: products it matches cannot be in
    # their facts until they are scanned again.
    needs_rescan: list[str] = field(default_factory=list)
    unseen_patterns: list[str] = field(default_factory=list)  # what those hosts' probes lacked
    rescan_request_id: int | None = None
    policy_version_id: int | None = None
    duration_s: float = 0.0

    def _count(self, ccg: str | None, status: str) -> None:
        changes = self.by_ccg.setdefault(ccg or NO_CCG, CcgChanges())
        if status == Status.COMPLIANT:
            changes.became_compliant += 1
        else:
            changes.became_noncompliant += 1
        self.changed += 1


def missing_patterns(policy: Policy, facts: Facts) -> list[str]:
    """The policy's watched patterns that the probe which gathered `facts` did not use."""
    used = {pattern.casefold() for pattern in facts.probe.patterns}
    return [p for p in policy.watched_patterns if p.casefold() not in used]


_Row = tuple[int, str, dict[str, Any] | None, dict[str, Any] | None, str | None, str, str | None]


def _batch_query(after: int, ids: Sequence[int] | None) -> Select[Any]:
    # Plain columns, not ORM objects: the unit of work's per-object bookkeeping costs more
    # than evaluating the policy, and the changes are written in bulk below.
    query = (
        select(
            col(HostState.host_id),
            col(HostState.status),
            col(HostState.facts),
            col(HostState.verdict),
            col(HostState.policy_hash),
            col(Host.hostname),
            col(Host.ccg_code),
        )
        .join(Host, col(Host.id) == col(HostState.host_id))
        .where(col(HostState.facts).is_not(None), col(Host.retired_at).is_(None))
        .order_by(col(HostState.host_id))
    )
    if ids is not None:
        return query.where(col(HostState.host_id).in_(ids))
    return query.where(col(HostState.host_id) > after).limit(BATCH)


async def _regrade_batch(
    session: AsyncSession,
    rows: Sequence[_Row],
    policy: Policy,
    report: RegradeReport,
    *,
    reason: str,
    now: datetime,
) -> None:
    waivers = await active_waivers(session, host_ids=[row[0] for row in rows], now=now)
    verdicts: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] = []
    stand_in = HostState(host_id=0)
    for host_id, status, stored_facts, stored_verdict, stored_hash, hostname, ccg in rows:
        if stored_facts is None:  # a JSON null, which SQL's IS NOT NULL lets through
            continue
        try:
            facts = Facts.model_validate(stored_facts)
        except ValidationError:
            report.unreadable.append(hostname)
            continue
        report.regraded += 1
        missing = missing_patterns(policy, facts)
        if missing:
            report.needs_rescan.append(hostname)
            report.unseen_patterns.extend(p for p in missing if p not in report.unseen_patterns)
        verdict = evaluate(policy, facts, waived=waivers.get(host_id, ()))
        graded = status in GRADED
        if graded and status != verdict.status:
            report._count(ccg, verdict.status)
        if report.dry_run:
            continue
        stored = verdict.to_json()
        if stored_verdict != stored or stored_hash != policy.content_hash:
            verdicts.append(
                {
                    "host_id": host_id,
                    "verdict": stored,
                    "failing_rules": verdict.failing_ids,
                    "advisories": verdict.advisory_ids,
                    "policy_id": policy.id,
                    "policy_hash": policy.content_hash,
                }
            )
        if graded and status != verdict.status:
            # set_status records the transition; the stand-in carries the row's current
            # status to it (one object reused: building table models is costly), and the new
            # status is written with the others in one statement.
            stand_in.host_id, stand_in.status = host_id, status
            set_status(session, stand_in, verdict.status, at=now, reason=reason)
            statuses.append(
                {
                    "host_id": host_id,
                    "status": stand_in.status,
                    "status_since": stand_in.status_since,
                }
            )
    for changes in (verdicts, statuses):
        if changes:
            await session.execute(update(HostState), changes)


async def regrade(
    db: Database,
    policy: Policy,
    *,
    reason: str,
    now: datetime | None = None,
    host_ids: Collection[int] | None = None,
    dry_run: bool = False,
) -> RegradeReport:
    """Re-evaluate stored facts with `policy` (all hosts, or only `host_ids`), in batches.

    Nothing is rescanned. Status transitions are recorded with `reason`; hosts whose last
    scan failed keep their status but get the new verdict for their last good facts.
    """
    now = now or utcnow()
    started = time.perf_counter()
    report = RegradeReport(policy.id, policy.content_hash, dry_run=dry_run)
    selected = sorted(set(host_ids)) if host_ids is not None else None
    after, offset = 0, 0
    while True:
        ids = None
        if selected is not None:
            ids = selected[offset : offset + BATCH]
            offset += BATCH
            if not ids:
                break
        session_scope = db.read() if dry_run else db.write()
        async with session_scope as session:
            query = _batch_query(after, ids)
            if not db.sqlite and not dry_run:
                # Lock the batch's rows so a daemon storing a scan result for one of these
                # hosts waits for this batch instead of being overwritten by it.
                query = query.with_for_update(of=HostState)
            rows = (await session.execute(query)).all()
            if not rows and selected is None:
                break
            if rows:
                after = rows[-1][0]
                batch = [tuple(row) for row in rows]
                await _regrade_batch(session, batch, policy, report, reason=reason, now=now)
    report.duration_s = time.perf_counter() - started
    return report


async def enqueue_rescan(
    db: Database, *, hostnames: Sequence[str], requested_by: str, now: datetime
) -> int:
    """Queue one on-demand rescan of these hosts for the daemons; return the request id."""
    async with db.write() as session:
        request = await request_rescan(
            session, selector=Selector(hosts=tuple(hostnames)), requested_by=requested_by, now=now
        )
        assert request.id is not None  # flushed by request_rescan
        return request.id


async def apply_policy(
    db: Database,
    policy: Policy,
    *,
    applied_by: str,
    now: datetime | None = None,
    dry_run: bool = False,
    rescan: bool = False,
) -> RegradeReport:
    """Make `policy` the active policy for every replica and re-grade the fleet's stored facts.

    With `rescan`, hosts whose facts cannot show every watched product are queued for a
    rescan. A dry run writes nothing and reports what would change.
    """
    now = now or utcnow()
    version_id = None
    if not dry_run:
        async with db.write() as session:
            row = PolicyVersion(
                policy_id=policy.id,
                content_hash=policy.content_hash,
                content=policy.source,
                applied_at=now,
                applied_by=applied_by[:100],
            )
            session.add(row)
            await session.flush()
            version_id = row.id
    report = await regrade(
        db, policy, reason=f"policy {policy.label} applied", now=now, dry_run=dry_run
    )
    report.policy_version_id = version_id
    if rescan and report.needs_rescan and not dry_run:
        report.rescan_request_id = await enqueue_rescan(
            db,
            hostnames=report.needs_rescan,
            requested_by=applied_by,
            now=now,
        )
    return report
