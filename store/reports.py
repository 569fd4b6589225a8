"""Read queries for metrics, the API, exports and `cmscan status`, aggregated in SQL.

Every figure here is computed by the database (GROUP BY over hosts in service), so its cost
grows with the number of groups, statuses and rules, not with the fleet. Only the host list,
one host's detail and the export read host rows, and those page or stream.

Definitions shared by every report:
- a host is *in service* until it is retired; retired hosts leave every report;
- a host is *stale* when it has been scanned at least once and its last good result is
  older than the freshness cut-off, or it never had one; a host never scanned is `unknown`,
  not stale;
- a group code that is missing or blank is reported as "unknown".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from store.hosts import find_host
from store.model import (
    CredentialSuspension,
    Host,
    HostState,
    Organisation,
    RescanRequest,
    Scan,
    Status,
    StatusChange,
)

GroupLevel = Literal["icb", "ccg", "pcn", "practice"]
GROUP_LEVELS: tuple[GroupLevel, ...] = ("icb", "ccg", "pcn", "practice")
UNKNOWN_GROUP = "unknown"
STATUSES: tuple[str, ...] = tuple(Status)
# Statuses that say the last probe failed; their hosts keep their last good verdict.
FAILED_STATUSES: tuple[str, ...] = (Status.UNREACHABLE, Status.AUTH_FAILED, Status.ERROR)

_GROUP_COLUMNS = {
    "icb": Host.icb_code,
    "ccg": Host.ccg_code,
    "pcn": Host.pcn_code,
    "practice": Host.practice_code,
}

Group = tuple[str, ...]  # one code per requested level, in the order asked for


def group_label(value: object) -> str:
    """A group code as reports show it: the code, or "unknown" when it is missing."""
    text = str(value).strip() if value is not None else ""
    return text or UNKNOWN_GROUP


def _group_columns(levels: Sequence[GroupLevel]) -> list[Any]:
    # Blank and missing codes become "unknown" in SQL, so they form one group. Grouping by an
    # expression also keeps SQLite from walking the code's index, which would read host_state
    # in random order: a plain scan is several times faster on a large fleet.
    return [
        sa.func.coalesce(
            sa.func.nullif(sa.func.trim(col(_GROUP_COLUMNS[level])), ""), UNKNOWN_GROUP
        ).label(f"g_{level}")
        for level in levels
    ]


def _group_of(row: Sequence[Any], width: int) -> Group:
    return tuple(group_label(value) for value in row[:width])


def _in_service() -> sa.ColumnElement[bool]:
    return col(Host.retired_at).is_(None)


def stale_condition(cutoff: datetime) -> sa.ColumnElement[bool]:
    """Scanned at least once, and no good result since `cutoff`."""
    return sa.and_(
        col(HostState.last_scan_at).is_not(None),
        sa.or_(col(HostState.last_success_at).is_(None), col(HostState.last_success_at) < cutoff),
    )


async def for_aggregates(session: AsyncSession) -> None:
    """Tune the session's transaction for the report queries below (call it first).

    On PostgreSQL: one snapshot for every query, so the figures agree with each other, and no
    JIT: it misjudges JSON set-returning functions and spends a second compiling queries that
    run in a fraction of that. SQLite's read transaction is a snapshot already.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        await session.execute(sa.text("SET LOCAL jit = off"))


# --- Status counts per group -------------------------------------------------------------


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


async def status_figures(
    session: AsyncSession, *, levels: Sequence[GroupLevel], now: datetime, cutoff: datetime
) -> StatusFigures:
    """Hosts per group per status, stale hosts per group, and hosts due, in one pass."""
    status = sa.func.coalesce(col(HostState.status), Status.UNKNOWN.value)
    stale = sa.case((stale_condition(cutoff), 1), else_=0)
    due = sa.case(
        (sa.and_(col(Host.enabled).is_(True), col(HostState.next_due_at) <= now), 1), else_=0
    )
    groups = _group_columns(levels)
    query = (
        sa.select(*groups, status, sa.func.count(), sa.func.sum(stale), sa.func.sum(due))
        .select_from(Host)
        .outerjoin(HostState, col(HostState.host_id) == col(Host.id))
        .where(_in_service())
        .group_by(*groups, status)
    )
    result = StatusFigures(groups={}, due=0)
    for row in (await session.execute(query)).all():
        counts = result.groups.setdefault(_group_of(row, len(levels)), GroupCounts())
        name, hosts, stale_hosts, due_hosts = row[len(levels) :]
        # A status outside the known set (written by a newer cmscan) still counts as a host.
        counts.statuses[name] = counts.statuses.get(name, 0) + int(hosts)
        counts.stale += int(stale_hosts or 0)
        result.due += int(due_hosts or 0)
    return result


# --- Rule failures and products (JSON held in host_state) --------------------------------


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
        groups = _group_columns(levels)
        rule = elements.c.value
        query = (
            sa.select(*groups, rule, sa.func.count())
            .select_from(Host)
            .join(HostState, col(HostState.host_id) == col(Host.id))
            .join(elements, sa.true())
            .where(_in_service())
            .group_by(*groups, rule)
        )
        for row in (await session.execute(query)).all():
            key = (_group_of(row, len(levels)), str(row[len(levels)]), severity)
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
    groups = _group_columns(levels)
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
        where = [_in_service()]
    else:
        elements = sa.func.json_each(col(HostState.products)).table_valued("value", "type")
        name = sa.func.json_extract(elements.c.value, "$[0]")
        version = sa.func.json_extract(elements.c.value, "$[1]")
        where = [_in_service(), elements.c.type == "array"]
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
        key = (_group_of(row, len(levels)), product, release if isinstance(release, str) else "")
        counts[key] = counts.get(key, 0) + int(row[-1])
    return counts


async def suspended_profiles(session: AsyncSession, *, now: datetime) -> list[str]:
    """Credential profiles the lockout guard has suspended and not yet released."""
    query = sa.select(col(CredentialSuspension.profile)).where(
        sa.or_(col(CredentialSuspension.until).is_(None), col(CredentialSuspension.until) > now)
    )
    return sorted((await session.execute(query)).scalars())


async def organisation_names(session: AsyncSession, *, level: GroupLevel) -> dict[str, str]:
    rows = await session.execute(
        sa.select(col(Organisation.code), col(Organisation.name)).where(
            col(Organisation.kind) == level, col(Organisation.name).is_not(None)
        )
    )
    return {code: name for code, name in rows.all() if name}


# --- Host lists and one host -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostFilter:
    status: str | None = None
    ccg: str | None = None
    practice: str | None = None
    text: str | None = None  # a piece of the hostname, address or site, any case


@dataclass(frozen=True, slots=True)
class HostSummary:
    hostname: str
    address: str | None
    site: str | None
    practice: str | None
    pcn: str | None
    ccg: str | None
    icb: str | None
    status: str
    failing_rules: tuple[str, ...]
    last_scan_at: datetime | None
    last_success_at: datetime | None
    stale: bool


@dataclass(frozen=True, slots=True)
class HostPage:
    total: int
    items: list[HostSummary]


def _host_filter(query: Any, selection: HostFilter) -> Any:
    query = query.where(_in_service())
    if selection.status:
        query = query.where(
            sa.func.coalesce(col(HostState.status), Status.UNKNOWN.value) == selection.status
        )
    if selection.ccg:
        query = query.where(col(Host.ccg_code) == selection.ccg.strip().upper())
    if selection.practice:
        query = query.where(col(Host.practice_code) == selection.practice.strip().upper())
    if selection.text:
        text = selection.text.strip()
        query = query.where(
            sa.or_(
                col(Host.hostname).icontains(text, autoescape=True),
                col(Host.address).icontains(text, autoescape=True),
                col(Host.site).icontains(text, autoescape=True),
            )
        )
    return query


async def host_page(
    session: AsyncSession,
    *,
    selection: HostFilter,
    offset: int,
    limit: int,
    cutoff: datetime,
) -> HostPage:
    """One page of hosts in service ordered by hostname (unique, so pages never overlap)."""
    base = sa.select(sa.func.count()).select_from(Host)
    base = base.outerjoin(HostState, col(HostState.host_id) == col(Host.id))
    total = int((await session.execute(_host_filter(base, selection))).scalar_one())
    query = (
        sa.select(
            col(Host.hostname),
            col(Host.address),
            col(Host.site),
            col(Host.practice_code),
            col(Host.pcn_code),
            col(Host.ccg_code),
            col(Host.icb_code),
            col(HostState.status),
            col(HostState.failing_rules),
            col(HostState.last_scan_at),
            col(HostState.last_success_at),
        )
        .select_from(Host)
        .outerjoin(HostState, col(HostState.host_id) == col(Host.id))
        .order_by(col(Host.hostname))
        .offset(offset)
        .limit(limit)
    )
    items = []
    for row in (await session.execute(_host_filter(query, selection))).all():
        last_scan, last_success = row[9], row[10]
        items.append(
            HostSummary(
                hostname=row[0],
                address=row[1],
                site=row[2],
                practice=row[3],
                pcn=row[4],
                ccg=row[5],
                icb=row[6],
                status=row[7] or Status.UNKNOWN,
                failing_rules=tuple(row[8] or ()),
                last_scan_at=last_scan,
                last_success_at=last_success,
                stale=is_stale(last_scan, last_success, cutoff),
            )
        )
    return HostPage(total=total, items=items)


def is_stale(last_scan: datetime | None, last_success: datetime | None, cutoff: datetime) -> bool:
    return last_scan is not None and (last_success is None or last_success < cutoff)


@dataclass(frozen=True, slots=True)
class HostDetail:
    host: Host
    practice_name: str | None
    state: HostState | None
    scans: list[Scan]  # newest first, without their facts
    changes: list[StatusChange]  # newest first


async def host_detail(
    session: AsyncSession, *, name: str, scans: int = 10, changes: int = 20
) -> HostDetail | None:
    """A host by name, address or unique short name, with its recent scans and status history.

    Raises store.hosts.HostLookupError when a short name matches several hosts.
    """
    host = await find_host(session, name=name)
    if host is None or host.id is None:
        return None
    state = await session.get(HostState, host.id)
    practice = None
    if host.practice_code:
        org = await session.get(Organisation, ("practice", host.practice_code))
        practice = org.name if org is not None else None
    # Facts of past scans stay out: the latest good facts are in the state already.
    scan_rows = await session.execute(
        sa.select(Scan)
        .options(sa.orm.defer(Scan.facts))  # type: ignore[arg-type]
        .where(col(Scan.host_id) == host.id)
        .order_by(col(Scan.started_at).desc(), col(Scan.id).desc())
        .limit(scans)
    )
    change_rows = await session.execute(
        sa.select(StatusChange)
        .where(col(StatusChange.host_id) == host.id)
        .order_by(col(StatusChange.at).desc(), col(StatusChange.id).desc())
        .limit(changes)
    )
    return HostDetail(
        host=host,
        practice_name=practice,
        state=state,
        scans=list(scan_rows.scalars()),
        changes=list(change_rows.scalars()),
    )


# --- Unpatched hosts, streamed -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnpatchedSelection:
    """Which hosts an export lists: noncompliant ones, and optionally failed or stale ones."""

    ccg: str | None = None
    practice: str | None = None
    include_unreachable: bool = False
    stale_before: datetime | None = None  # also hosts with no good result since then


@dataclass(frozen=True, slots=True)
class UnpatchedHost:
    hostname: str
    address: str | None
    site: str | None
    practice_code: str | None
    practice_name: str | None
    pcn_code: str | None
    ccg_code: str | None
    icb_code: str | None
    status: str
    failing: Any  # the verdict's failed required findings (a JSON list, or None)
    waived: Any  # the verdict's waived findings
    products: Any  # the last good facts' products
    last_scan_at: datetime | None
    last_success_at: datetime | None
    first_seen_at: datetime


STREAM_BATCH = 500  # rows fetched per round trip: memory stays flat however many hosts match


async def unpatched_hosts(
    session: AsyncSession, *, selection: UnpatchedSelection
) -> AsyncIterator[UnpatchedHost]:
    """Hosts to fix, ordered by CCG, practice and hostname, streamed from a server-side cursor."""
    practice = aliased(Organisation)
    statuses = [Status.NONCOMPLIANT.value]
    if selection.include_unreachable:
        statuses += FAILED_STATUSES
    wanted: sa.ColumnElement[bool] = col(HostState.status).in_(statuses)
    if selection.stale_before is not None:
        wanted = sa.or_(wanted, stale_condition(selection.stale_before))
    query: Any = (
        sa.select(
            col(Host.hostname).label("hostname"),
            col(Host.address).label("address"),
            col(Host.site).label("site"),
            col(Host.practice_code).label("practice_code"),
            col(practice.name).label("practice_name"),
            col(Host.pcn_code).label("pcn_code"),
            col(Host.ccg_code).label("ccg_code"),
            col(Host.icb_code).label("icb_code"),
            col(HostState.status).label("status"),
            # Only the parts an export shows: decoding whole documents would cost more than
            # everything else an export row needs.
            col(HostState.verdict)["failing"].label("failing"),
            col(HostState.verdict)["waived"].label("waived"),
            col(HostState.facts)["products"].label("products"),
            col(HostState.last_scan_at).label("last_scan_at"),
            col(HostState.last_success_at).label("last_success_at"),
            col(Host.first_seen_at).label("first_seen_at"),
        )
        .select_from(Host)
        .join(HostState, col(HostState.host_id) == col(Host.id))
        .outerjoin(
            practice,
            sa.and_(
                col(practice.kind) == "practice", col(practice.code) == col(Host.practice_code)
            ),
        )
        .where(_in_service(), wanted)
        .order_by(
            col(Host.ccg_code).nulls_last(),
            col(Host.practice_code).nulls_last(),
            col(Host.hostname),
        )
        .execution_options(yield_per=STREAM_BATCH)
    )
    if selection.ccg:
        query = query.where(col(Host.ccg_code) == selection.ccg.strip().upper())
    if selection.practice:
        query = query.where(col(Host.practice_code) == selection.practice.strip().upper())
    result = await session.stream(query)
    async for rows in result.partitions():  # a batch per await, not a row
        for row in rows:
            yield UnpatchedHost(**row._mapping)


# --- What `cmscan status` adds -----------------------------------------------------------


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
