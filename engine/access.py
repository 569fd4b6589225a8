"""Grading dashboard access: importing a users report, and re-grading it when the rule changes."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from inventory.cim_users import UsersReport, read_users_report
from policy import Policy
from policy.access import AccessRule
from policy.access_in_force import RuleInUse, rule_in_use
from store.access import (
    AccessPlan,
    GradedGrant,
    apply_access,
    plan_access,
    prune_history,
    set_access,
    stored_grants,
)
from store.db import Database
from store.model import utcnow
from store.policies import get_active_policy
from store.reports.access import closed_in_ods, inventory_practices


def grade(report: UsersReport, rule: AccessRule) -> list[GradedGrant]:
    return [
        GradedGrant(
            user_id=grant.user_id,
            name=grant.name,
            org_code=grant.org_code,
            codes=tuple(sorted(grant.codes)),
            has_access=rule.opens(grant.codes),
        )
        for grant in report.grants
    ]


@dataclass(slots=True)
class AccessImportReport:
    """Everything an import found and did; `written` is False for dry runs and refusals."""

    report: UsersReport
    rule: RuleInUse | None = None
    plan: AccessPlan | None = None
    written: bool = False
    refused: str | None = None
    # Users at organisation codes with no host in the inventory: code -> users.
    not_in_inventory: dict[str, int] = field(default_factory=dict)
    closed: dict[str, str] = field(default_factory=dict)  # practice -> ODS status (C, D)
    duration_s: float = 0.0


async def import_access(
    database: Database,
    *,
    path: Path,
    columns: Mapping[str, str] | None = None,
    dry_run: bool = False,
    keep_history: timedelta = timedelta(days=365),
    now: datetime | None = None,
) -> AccessImportReport:
    """Replace the stored users snapshot with a report, all or nothing. Raises
    InventoryFileError only for an unreadable file."""
    started = time.perf_counter()
    when = now or utcnow()
    report = read_users_report(path, columns=columns)
    result = AccessImportReport(report)
    if report.errors:
        return result
    if not report.grants:
        result.refused = (
            f"{path}: the report lists no users; nothing was changed. To remove every stored"
            " user, run cmscan access purge"
        )
        return result
    async with database.read() if dry_run else database.write() as session:
        result.rule = rule_in_use(await get_active_policy(session))
        graded = grade(report, result.rule.rule)
        practices = await inventory_practices(session)
        for grant in graded:
            if grant.org_code not in practices:
                result.not_in_inventory[grant.org_code] = (
                    result.not_in_inventory.get(grant.org_code, 0) + 1
                )
        result.closed = await closed_in_ods(session, [g.org_code for g in graded])
        result.plan = await plan_access(session, graded)
        if not dry_run:
            await apply_access(
                session,
                result.plan,
                source=path.name,
                users=report.users,
                grants=len(graded),
                now=when,
            )
            await prune_history(session, before=when - keep_history)
            result.written = True
    result.duration_s = time.perf_counter() - started
    return result


@dataclass(frozen=True, slots=True)
class AccessRegrade:
    gained: int
    lost: int


async def regrade_access(
    database: Database, policy: Policy, *, now: datetime, dry_run: bool = False
) -> AccessRegrade:
    """Grade the stored codes again under `policy`'s rule (after `policy apply`)."""
    rule = rule_in_use(policy).rule
    async with database.read() if dry_run else database.write() as session:
        flips = [
            (user, org, has)
            for (user, org), stored in (await stored_grants(session)).items()
            if (has := rule.opens(stored.codes)) != stored.has_access
        ]
        if not dry_run:
            await set_access(session, flips, now=now, cause="policy")
    gained = sum(has for _, _, has in flips)
    return AccessRegrade(gained=gained, lost=len(flips) - gained)
