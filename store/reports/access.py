"""Dashboard access per practice beside its machines, per group, and the gaps an RA closes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from store.model import AccessGrant, AccessUser, Host, HostState, Organisation, Status
from store.reports.groups import UNKNOWN_GROUP, GroupLevel, in_service

Readiness = Literal["ready", "no_users", "no_machines", "no_users_no_machines"]
READINESS: tuple[Readiness, ...] = ("ready", "no_users", "no_machines", "no_users_no_machines")
STREAM_BATCH = 500


def readiness(users_with_access: int, machines_ready: int) -> Readiness:
    """`ready` when someone can open the dashboard and a machine can run it, else what lacks."""
    if users_with_access and machines_ready:
        return "ready"
    if machines_ready:
        return "no_users"
    if users_with_access:
        return "no_machines"
    return "no_users_no_machines"


@dataclass(frozen=True, slots=True)
class PracticeAccess:
    """One practice of the inventory: who can open its dashboard, and its compliant machines."""

    practice_code: str
    practice_name: str | None
    pcn_code: str | None
    ccg_code: str | None
    icb_code: str | None
    users_with_access: int
    users_missing_codes: int
    machines_ready: int
    machines: int

    @property
    def readiness(self) -> Readiness:
        return readiness(self.users_with_access, self.machines_ready)

    def record(self) -> dict[str, Any]:
        """The practice as `cmscan access status --json` and the API write it."""
        return {
            "practice_code": self.practice_code,
            "practice_name": self.practice_name,
            "pcn_code": self.pcn_code,
            "ccg_code": self.ccg_code,
            "users_with_access": self.users_with_access,
            "users_missing_codes": self.users_missing_codes,
            "machines_ready": self.machines_ready,
            "machines": self.machines,
            "readiness": self.readiness,
        }

    def code(self, level: GroupLevel) -> str:
        value = self.practice_code if level == "practice" else getattr(self, f"{level}_code")
        return value or UNKNOWN_GROUP


def _practices() -> Any:
    """Practices with hosts in service: their PCN, CCG and ICB (as the hosts say), and machines."""
    compliant = sa.case((col(HostState.status) == Status.COMPLIANT.value, 1), else_=0)
    return (
        sa.select(
            col(Host.practice_code).label("practice_code"),
            sa.func.max(col(Host.pcn_code)).label("pcn_code"),
            sa.func.max(col(Host.ccg_code)).label("ccg_code"),
            sa.func.max(col(Host.icb_code)).label("icb_code"),
            sa.func.count().label("machines"),
            sa.func.coalesce(sa.func.sum(compliant), 0).label("machines_ready"),
        )
        .select_from(Host)
        .outerjoin(HostState, col(HostState.host_id) == col(Host.id))
        .where(in_service(), col(Host.practice_code).is_not(None))
        .group_by(col(Host.practice_code))
        .subquery("practices")
    )


async def practice_access(
    session: AsyncSession, *, ccg: str | None = None, practice: str | None = None
) -> list[PracticeAccess]:
    """Every practice of the inventory (or the one asked for), ordered by CCG and code."""
    practices = _practices()
    users = (
        sa.select(
            col(AccessGrant.org_code).label("org_code"),
            sa.func.sum(sa.case((col(AccessGrant.has_access), 1), else_=0)).label("with_access"),
            sa.func.sum(sa.case((col(AccessGrant.has_access), 0), else_=1)).label("missing"),
        )
        .group_by(col(AccessGrant.org_code))
        .subquery("users")
    )
    query = (
        sa.select(
            practices.c.practice_code,
            col(Organisation.name),
            practices.c.pcn_code,
            practices.c.ccg_code,
            practices.c.icb_code,
            sa.func.coalesce(users.c.with_access, 0),
            sa.func.coalesce(users.c.missing, 0),
            practices.c.machines_ready,
            practices.c.machines,
        )
        .select_from(practices)
        .outerjoin(users, users.c.org_code == practices.c.practice_code)
        .outerjoin(
            Organisation,
            sa.and_(
                col(Organisation.kind) == "practice",
                col(Organisation.code) == practices.c.practice_code,
            ),
        )
        .order_by(practices.c.ccg_code, practices.c.practice_code)
    )
    if ccg:
        query = query.where(practices.c.ccg_code == ccg.strip().upper())
    if practice:
        query = query.where(practices.c.practice_code == practice.strip().upper())
    return [PracticeAccess(*(_number(v) for v in row)) for row in (await session.execute(query))]


def _number(value: Any) -> Any:
    # SUM comes back as Decimal from PostgreSQL; counts are plain integers everywhere else.
    return int(value) if value is not None and not isinstance(value, str | int) else value


@dataclass(slots=True)
class GroupAccess:
    """Practices of one group by readiness, and distinct users who can and cannot open one."""

    practices: dict[Readiness, int]
    users_with_access: int = 0
    users_missing_codes: int = 0
    machines_ready: int = 0
    machines: int = 0

    @property
    def practices_ready(self) -> int:
        return self.practices["ready"]


async def group_access(
    session: AsyncSession, *, levels: Sequence[GroupLevel], ccg: str | None = None
) -> dict[tuple[str, ...], GroupAccess]:
    """Access figures per group of `levels`; a user at two practices of a group counts once."""
    each = await practice_access(session, ccg=ccg)
    result: dict[tuple[str, ...], GroupAccess] = {}
    for practice in each:
        group = tuple(practice.code(level) for level in levels)
        figures = result.setdefault(group, GroupAccess(practices=dict.fromkeys(READINESS, 0)))
        figures.practices[practice.readiness] += 1
        figures.machines_ready += practice.machines_ready
        figures.machines += practice.machines
    practices = _practices()
    columns = {
        "practice": practices.c.practice_code,
        "pcn": practices.c.pcn_code,
        "ccg": practices.c.ccg_code,
        "icb": practices.c.icb_code,
    }
    keys = [sa.func.coalesce(columns[level], UNKNOWN_GROUP) for level in levels]
    user = col(AccessGrant.user_id)
    query = (
        sa.select(
            *keys,
            sa.func.count(sa.distinct(sa.case((col(AccessGrant.has_access), user)))),
            sa.func.count(sa.distinct(sa.case((sa.not_(col(AccessGrant.has_access)), user)))),
        )
        .select_from(AccessGrant)
        .join(practices, practices.c.practice_code == col(AccessGrant.org_code))
        .group_by(*keys)
    )
    if ccg:
        query = query.where(practices.c.ccg_code == ccg.strip().upper())
    for row in await session.execute(query):
        found = result.get(tuple(row[: len(levels)]))
        if found is not None:
            found.users_with_access = int(row[-2])
            found.users_missing_codes = int(row[-1])
    return result


@dataclass(frozen=True, slots=True)
class AccessGap:
    """A user at a practice of the inventory who holds none of the codes that open its dashboard."""

    user_id: str
    name: str
    practice_code: str
    practice_name: str | None
    ccg_code: str | None
    codes: Any  # the codes held there (a JSON list)


async def access_gaps(
    session: AsyncSession, *, ccg: str | None = None, practice: str | None = None
) -> AsyncIterator[AccessGap]:
    """The gaps, by CCG, practice and user, streamed from a server-side cursor."""
    practices = _practices()
    query: Any = (
        sa.select(
            col(AccessGrant.user_id).label("user_id"),
            col(AccessUser.name).label("name"),
            practices.c.practice_code.label("practice_code"),
            col(Organisation.name).label("practice_name"),
            practices.c.ccg_code.label("ccg_code"),
            col(AccessGrant.codes).label("codes"),
        )
        .select_from(AccessGrant)
        .join(AccessUser, col(AccessUser.user_id) == col(AccessGrant.user_id))
        .join(practices, practices.c.practice_code == col(AccessGrant.org_code))
        .outerjoin(
            Organisation,
            sa.and_(
                col(Organisation.kind) == "practice",
                col(Organisation.code) == practices.c.practice_code,
            ),
        )
        .where(sa.not_(col(AccessGrant.has_access)))
        .order_by(practices.c.ccg_code, practices.c.practice_code, col(AccessGrant.user_id))
        .execution_options(yield_per=STREAM_BATCH)
    )
    if ccg:
        query = query.where(practices.c.ccg_code == ccg.strip().upper())
    if practice:
        query = query.where(practices.c.practice_code == practice.strip().upper())
    result = await session.stream(query)
    async for rows in result.partitions():
        for row in rows:
            yield AccessGap(**row._mapping)


async def inventory_practices(session: AsyncSession) -> set[str]:
    """Practice codes that have hosts in service: the ones the access view shows."""
    query = (
        sa.select(col(Host.practice_code))
        .where(in_service(), col(Host.practice_code).is_not(None))
        .distinct()
    )
    return {code for (code,) in (await session.execute(query)).all() if code}


async def closed_in_ods(session: AsyncSession, codes: Sequence[str]) -> dict[str, str]:
    """Of `codes`, the practices ODS lists as closed (C) or dormant (D): code -> status."""
    query = sa.select(col(Organisation.code), col(Organisation.ods_status)).where(
        col(Organisation.kind) == "practice",
        col(Organisation.ods_status).in_(("C", "D")),
        col(Organisation.code).in_(sorted(set(codes))),
    )
    return {code: status or "" for code, status in (await session.execute(query)).all()}
