"""Granting, revoking and lapsing waivers, each followed at once by a re-grade of its hosts."""

from __future__ import annotations

from datetime import datetime

from engine.regrade import RegradeReport, regrade
from store.db import Database
from store.model import Waiver, utcnow
from store.policies import get_active_policy
from store.waivers import add_waiver, end_waiver, lapsed_waivers


async def grant_waiver(
    db: Database,
    *,
    rule_id: str,
    until: datetime,
    reason: str,
    created_by: str,
    host_id: int | None = None,
    practice_code: str | None = None,
    now: datetime | None = None,
) -> tuple[Waiver, RegradeReport]:
    """Excuse one host, or every host of a practice, from `rule_id` until `until`, and re-grade
    them at once. Raises WaiverError for an unknown rule, a past date or an unknown target."""
    now = now or utcnow()
    async with db.write() as session:
        policy = await get_active_policy(session)
        waiver, hosts = await add_waiver(
            session,
            policy,
            rule_id=rule_id,
            until=until,
            reason=reason,
            created_by=created_by,
            host_id=host_id,
            practice_code=practice_code,
            now=now,
        )
    report = await regrade(
        db,
        policy,
        reason=f"waiver #{waiver.id} ({rule_id}) granted by {created_by}",
        now=now,
        host_ids=hosts,
    )
    return waiver, report


async def revoke_waiver(
    db: Database, waiver_id: int, *, revoked_by: str, now: datetime | None = None
) -> tuple[Waiver, RegradeReport]:
    """End a waiver now and re-grade the hosts it covered."""
    now = now or utcnow()
    async with db.write() as session:
        waiver, hosts = await end_waiver(session, waiver_id, now=now)
        policy = await get_active_policy(session)
    report = await regrade(
        db,
        policy,
        reason=f"waiver #{waiver_id} ({waiver.rule_id}) revoked by {revoked_by}",
        now=now,
        host_ids=hosts,
    )
    return waiver, report


async def regrade_lapsed_waivers(
    db: Database, *, since: datetime, now: datetime | None = None
) -> RegradeReport | None:
    """Re-grade the hosts of waivers that ran out in (since, now]; None when none did.

    Waivers stop applying by themselves at the next evaluation; a daemon calls this
    periodically so that stored verdicts follow without waiting for the next scan.
    """
    now = now or utcnow()
    async with db.read() as session:
        lapsed, hosts = await lapsed_waivers(session, since=since, now=now)
        if not lapsed:
            return None
        policy = await get_active_policy(session)
    if len(lapsed) == 1:
        reason = f"waiver #{lapsed[0].id} ({lapsed[0].rule_id}) expired"
    else:
        reason = f"{len(lapsed)} waivers expired"
    return await regrade(db, policy, reason=reason, now=now, host_ids=hosts)
