"""Recording finished scans: grade each, update its host's state, and count rescan progress."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from engine.grading import REASON_LIMIT, CompletedScan, Transition, apply_scan, grade
from engine.scheduling import Schedule
from policy import Policy
from store.history import set_status
from store.model import HostState
from store.scans import count_rescans, host_states, insert_scans


def _changed_facts(scan: CompletedScan, previous: dict[str, Any] | None) -> dict[str, Any] | None:
    """The facts to keep with this scan: only when they differ from the host's previous facts
    (the probe's own timing aside). Most scans find nothing new, and a facts document per
    probe would grow the history by hundreds of megabytes a day on a large estate."""
    if scan.result.facts is None:
        return None
    facts = scan.result.facts.model_dump(mode="json")
    if previous is not None and _without_probe(previous) == _without_probe(facts):
        return None
    return facts


def _without_probe(facts: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in facts.items() if key != "probe"}


def _scan_row(scan: CompletedScan, scanner_id: str, facts: dict[str, Any] | None) -> dict[str, Any]:
    result = scan.result
    return {
        "host_id": scan.host_id,
        "started_at": scan.started_at,
        "finished_at": scan.finished_at,
        "outcome": result.outcome.value,
        "reason": result.reason[:REASON_LIMIT],
        "duration_s": round(result.duration_s, 3),
        "transport": result.transport,
        "trigger": scan.trigger,
        "rescan_request_id": scan.rescan_request_id,
        "scanner_id": scanner_id,
        "facts": facts,
    }


async def record_scans(
    session: AsyncSession,
    *,
    scans: Sequence[CompletedScan],
    scanner_id: str,
    policy: Policy,
    schedule: Schedule,
    rng: random.Random,
    waivers: Mapping[int, set[str]],
    now: datetime,
) -> list[Transition | None]:
    """Write a batch of scans in the caller's transaction; one Transition per scan, or None
    where a newer result (or another replica's live lease) already owns the host's state."""
    if not scans:
        return []
    states = await host_states(session, host_ids={scan.host_id for scan in scans})
    rows = []
    for scan in scans:
        state = states.get(scan.host_id)
        previous = state.facts if state is not None else None
        rows.append(_scan_row(scan, scanner_id, _changed_facts(scan, previous)))
    scan_ids = await insert_scans(session, rows)
    transitions: list[Transition | None] = []
    # A scan counts for its rescan request only while the host still waits under that
    # request: one taken over by a newer request, or scanned by someone else meanwhile, is
    # counted by that request or that scan, never twice.
    answered: Counter[int] = Counter()
    for scan, scan_id in zip(scans, scan_ids, strict=True):
        state = states.get(scan.host_id)
        if state is None or _superseded(state, scan, scanner_id, now):
            transitions.append(None)
            continue
        if scan.rescan_request_id is not None and state.rescan_request_id == scan.rescan_request_id:
            answered[scan.rescan_request_id] += 1
        status, verdict = grade(policy, scan, waivers.get(scan.host_id, set()))
        reason = apply_scan(
            state, scan, status=status, verdict=verdict, scan_id=scan_id, schedule=schedule, rng=rng
        )
        set_status(session, state, status, at=scan.finished_at, reason=reason)
        transitions.append(Transition(status=status, reason=reason, verdict=verdict))
    await count_rescans(session, answered, now=now)
    return transitions


def _superseded(state: HostState, scan: CompletedScan, scanner_id: str, now: datetime) -> bool:
    if scan.claim_generation is not None and scan.claim_generation != state.claim_generation:
        return True  # claimed again since: its owner was taken for dead, or gave it back
    if state.last_scan_at is not None and state.last_scan_at > scan.started_at:
        return True  # someone recorded a newer scan of this host meanwhile
    held_by_other = state.lease_owner not in (None, scanner_id)
    return held_by_other and state.lease_expires_at is not None and state.lease_expires_at > now
