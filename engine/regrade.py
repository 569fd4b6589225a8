"""Re-grading stored facts when a policy or a waiver changes, and applying a new policy."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from collectors.facts import Facts
from engine.access import regrade_access
from policy import Policy, evaluate
from store import policies
from store.db import Database
from store.history import set_status
from store.model import HostState, Status, utcnow
from store.policies import StoredFacts, record_policy_version, stored_facts_batch, update_states
from store.rescans import enqueue_rescan
from store.waivers import active_waivers

# Statuses a verdict may replace. A host whose last scan failed keeps saying so (unreachable,
# auth_failed, error) even though its older facts are re-graded.
GRADED = frozenset({Status.COMPLIANT, Status.NONCOMPLIANT, Status.UNKNOWN})
NO_CCG = ""


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
    # (user, organisation) pairs whose dashboard access the new access rule turned on / off.
    access_gained: int = 0
    access_lost: int = 0

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


async def _regrade_batch(
    session: AsyncSession,
    rows: Sequence[StoredFacts],
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
        await update_states(session, changes)


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
            ids = selected[offset : offset + policies.BATCH]
            offset += policies.BATCH
            if not ids:
                break
        session_scope = db.read() if dry_run else db.write()
        async with session_scope as session:
            rows = await stored_facts_batch(
                session, after=after, host_ids=ids, lock=not db.sqlite and not dry_run
            )
            if not rows and selected is None:
                break
            if rows:
                after = rows[-1][0]
                await _regrade_batch(session, rows, policy, report, reason=reason, now=now)
    report.duration_s = time.perf_counter() - started
    return report


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
            version_id = await record_policy_version(
                session, policy, applied_by=applied_by, now=now
            )
    report = await regrade(
        db, policy, reason=f"policy {policy.label} applied", now=now, dry_run=dry_run
    )
    report.policy_version_id = version_id
    access = await regrade_access(db, policy, now=now, dry_run=dry_run)
    report.access_gained, report.access_lost = access.gained, access.lost
    if rescan and report.needs_rescan and not dry_run:
        report.rescan_request_id = await enqueue_rescan(
            db,
            hostnames=report.needs_rescan,
            requested_by=applied_by,
            now=now,
        )
    return report
