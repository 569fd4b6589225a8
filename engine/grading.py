"""From a finished probe to the host's new state: status, verdict, failures, next due time."""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from collectors.base import Outcome, ScanResult
from collectors.facts import Facts
from engine.scheduling import Schedule
from policy import Policy, Verdict, evaluate
from store.model import HostState, Status

# docs/architecture.md, invariant 3: every outcome maps to exactly one status.
OUTCOME_STATUS: dict[str, Status] = {
    Outcome.UNREACHABLE: Status.UNREACHABLE,
    Outcome.TIMEOUT: Status.UNREACHABLE,
    Outcome.AUTH_FAILED: Status.AUTH_FAILED,
    Outcome.PROTOCOL_ERROR: Status.ERROR,
    Outcome.PROBE_ERROR: Status.ERROR,
}

REASON_LIMIT = 500


@dataclass(frozen=True, slots=True)
class CompletedScan:
    """A probe as the engine saw it, ready to be recorded."""

    host_id: int
    hostname: str
    ccg_code: str | None
    started_at: datetime
    finished_at: datetime
    result: ScanResult
    trigger: str  # schedule, sweep, rescan
    rescan_request_id: int | None = None
    claim_generation: int | None = None  # the claim it was probed under; None: not fenced


@dataclass(frozen=True, slots=True)
class Transition:
    """What recording a scan did to its host."""

    status: str
    reason: str | None
    verdict: Verdict | None


def product_pairs(facts: Facts) -> list[list[str]]:
    """Distinct [name, version] pairs: a product in both registry views is one install."""
    pairs = {(p.name, p.version or "") for p in facts.products}
    return [list(pair) for pair in sorted(pairs)]


def grade(
    policy: Policy, scan: CompletedScan, waived: Collection[str] = ()
) -> tuple[Status, Verdict | None]:
    """The host's status after this scan, and the policy's verdict when there are facts."""
    result = scan.result
    if result.outcome == Outcome.OK and result.facts is not None:
        verdict = evaluate(policy, result.facts, waived=waived)
        return Status(verdict.status), verdict
    return OUTCOME_STATUS[result.outcome], None


def apply_scan(
    state: HostState,
    scan: CompletedScan,
    *,
    status: Status,
    verdict: Verdict | None,
    scan_id: int,
    schedule: Schedule,
    rng: random.Random,
) -> str | None:
    """Update `state` for a recorded scan; return the reason to log with a status change."""
    result = scan.result
    when = scan.finished_at
    state.last_scan_id = scan_id
    state.last_scan_at = when
    state.last_outcome = result.outcome.value
    state.last_reason = result.reason[:REASON_LIMIT] or None
    state.lease_owner = None
    state.lease_expires_at = None
    if state.rescan_request_id == scan.rescan_request_id:
        state.rescan_request_id = None
    if verdict is not None and result.facts is not None:
        # Facts and verdict are kept apart (invariant 2): the verdict can be recomputed.
        state.facts = result.facts.model_dump(mode="json")
        state.products = product_pairs(result.facts)
        state.facts_at = when
        state.verdict = verdict.to_json()
        state.policy_id = verdict.policy_id
        state.policy_hash = verdict.policy_hash
        state.failing_rules = verdict.failing_ids
        state.advisories = verdict.advisory_ids
        state.last_success_at = when
        state.consecutive_failures = 0
        reason = "; ".join(verdict.failing_ids) or None
    else:
        # A failed probe leaves the last good facts and verdict in place for reference.
        state.consecutive_failures += 1
        reason = state.last_reason
    state.next_due_at = schedule.next_due(
        now=when, status=status, consecutive_failures=state.consecutive_failures, rng=rng
    )
    return reason
