"""Figures per group, computed by the database: statuses, rule failures, products, queues."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from store.model import CredentialSuspension, Host, HostState, RescanRequest, Status
from store.reports.groups import (
    STATUSES,
    Group,
    GroupLevel,
    group_columns,
    group_of,
    in_service,
    stale_condition,
)


@dataclass(slots=True)
class GroupCounts:
    """Hosts of one group by status, and how many of them are stale."""

    statuses: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    stale: int = 0

    @property
    def hosts(self) -> int:
        return sum(self.statuses.values())

    @property
    def compliant_percent(self) -> float:
        """Share of the group's hosts in service whose latest verdict is compliant."""
        total = self.hosts
        return round(100.0 * self.statuses[Status.COMPLIANT] / total, 1) if total else 0.0


@dataclass(slots=True)
class StatusFigures:
    groups: dict[Group, GroupCounts]
    due: int  # hosts in service and enabled whose next scan is due now

    def total(self) -> GroupCounts:
        """Every group's hosts added up: the fleet's line under a table of groups."""
        total = GroupCounts()
        for counts in self.groups.values():
            for name, hosts in counts.statuses.items():
                total.statuses[name] = total.statuses.get(name, 0) + hosts
            total.stale += counts.stale
        return total


async def status_figures(
    session: AsyncSession, *, levels: Sequence[GroupLevel], now: datetime, cutoff: datetime
) -> StatusFigures:
    """Hosts per group per status, stale hosts per group, and hosts due, in one pass."""
    status = sa.func.coalesce(col(HostState.status), Status.UNKNOWN.value)
    stale = sa.case((stale_condition(cutoff), 1), else_=0)
    due = sa.case(
        (sa.and_(col(Host.enabled).is_(True), col(HostState.next_due_at) <= now), 1), else_=0
    )
    groups = group_columns(levels)
    query = (
        sa.select(*groups, status, sa.func.count(), sa.func.sum(stale), sa.func.sum(due))
        .select_from(Host)
        .outerjoin(HostState, col(HostState.host_id) == col(Host.id))
        .where(in_service())
        .group_by(*groups, status)
    )
    result = StatusFigures(groups={}, due=0)
    for row in (await session.execute(query)).all():
        counts = result.groups.setdefault(group_of(row, len(levels)), GroupCounts())
        name, hosts, stale_hosts, due_hosts = row[len(levels) :]
        # A status outside the known set (written by a newer cmscan) still counts as a host.
        counts.statuses[name] = counts.statuses.get(name, 0) + int(hosts)
        counts.stale += int(stale_hosts or 0)
        result.due += int(due_hosts or 0)
    return result


def _json_elements(session: AsyncSession, column: Any) -> Any:
    """The elements of a JSON array column as a table with a `value` column (text)."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.jsonb_array_elements_text(column).table_valued("value")
    return sa.func.json_each(column).table_valued("value")


async def rule_failures(
    session: AsyncSession, *, levels: Sequence[GroupLevel]
) -> dict[tuple[Group, str, str], int]:
    """(group, rule id, severity) -> hosts in service whose latest verdict fails the rule.

    The verdict comes from each host's last good facts, so a machine that is unreachable now
    still counts for what it lacked when it was last seen.
    """
    counts: dict[tuple[Group, str, str], int] = {}
    for severity, column in (
        ("required", col(HostState.failing_rules)),
        ("advisory", col(HostState.advisories)),
    ):
        elements = _json_elements(session, column)
        groups = group_columns(levels)
        rule = elements.c.value
        query = (
            sa.select(*groups, rule, sa.func.count())
            .select_from(Host)
            .join(HostState, col(HostState.host_id) == col(Host.id))
            .join(elements, sa.true())
            .where(in_service())
            .group_by(*groups, rule)
        )
        for row in (await session.execute(query)).all():
            key = (group_of(row, len(levels)), str(row[len(levels)]), severity)
            counts[key] = counts.get(key, 0) + int(row[-1])
    return counts


async def product_installs(
    session: AsyncSession, *, levels: Sequence[GroupLevel]
) -> dict[tuple[Group, str, str], int]:
    """(group, product name, version) -> hosts in service whose last good facts list it.

    Reads host_state.products, the facts' distinct [name, version] pairs, rather than each
    host's whole facts document. Names and versions are as hosts reported them; callers
    normalise them.
    """
    groups = group_columns(levels)
    name: Any
    version: Any
    if session.get_bind().dialect.name == "postgresql":
        products = col(HostState.products)
        # jsonb_array_elements refuses anything but an array: a report must never fail on
        # one odd row.
        array = sa.case(
            (sa.func.jsonb_typeof(products) == "array", products),
            else_=sa.cast(sa.literal("[]"), JSONB),
        )
        elements = sa.func.jsonb_array_elements(array).table_valued("value")
        name = elements.c.value.op("->>")(0)
        version = elements.c.value.op("->>")(1)
        where = [in_service()]
    else:
        elements = sa.func.json_each(col(HostState.products)).table_valued("value", "type")
        name = sa.func.json_extract(elements.c.value, "$[0]")
        version = sa.func.json_extract(elements.c.value, "$[1]")
        where = [in_service(), elements.c.type == "array"]
    query = (
        sa.select(*groups, name, version, sa.func.count())
        .select_from(Host)
        .join(HostState, col(HostState.host_id) == col(Host.id))
        .join(elements, sa.true())
        .where(*where)
        .group_by(*groups, name, version)
    )
    counts: dict[tuple[Group, str, str], int] = {}
    for row in (await session.execute(query)).all():
        product, release = row[len(levels)], row[len(levels) + 1]
        if not isinstance(product, str):
            continue
        key = (group_of(row, len(levels)), product, release if isinstance(release, str) else "")
        counts[key] = counts.get(key, 0) + int(row[-1])
    return counts


async def suspended_profiles(session: AsyncSession, *, now: datetime) -> list[str]:
    """Credential profiles the lockout guard has suspended and not yet released."""
    query = sa.select(col(CredentialSuspension.profile)).where(
        sa.or_(col(CredentialSuspension.until).is_(None), col(CredentialSuspension.until) > now)
    )
    return sorted((await session.execute(query)).scalars())


@dataclass(frozen=True, slots=True)
class QueueFigures:
    pending_rescans: int
    oldest_pending: datetime | None


async def rescan_queue(session: AsyncSession) -> QueueFigures:
    row = (
        await session.execute(
            sa.select(sa.func.count(), sa.func.min(col(RescanRequest.requested_at))).where(
                col(RescanRequest.state) != "done"
            )
        )
    ).one()
    return QueueFigures(pending_rescans=int(row[0]), oldest_pending=row[1])


def top_rules(
    failures: dict[tuple[Group, str, str], int], *, severity: str = "required", limit: int = 3
) -> dict[Group, list[tuple[str, int]]]:
    """For each group, its most failed rules of one severity, most hosts first."""
    per_group: dict[Group, list[tuple[str, int]]] = defaultdict(list)
    for (group, rule, rule_severity), hosts in failures.items():
        if rule_severity == severity and hosts:
            per_group[group].append((rule, hosts))
    return {
        group: sorted(rules, key=lambda item: (-item[1], item[0]))[:limit]
        for group, rules in per_group.items()
    }
