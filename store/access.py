"""Dashboard access as stored: the users report's snapshot, its history, and purging it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from store.model import AccessChange, AccessGrant, AccessImport, AccessUser

# Rows per statement: well under SQLite's limit on bound parameters.
CHUNK = 500

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class GradedGrant:
    """One user at one organisation from a report, with the verdict of the access rule."""

    user_id: str
    name: str
    org_code: str
    codes: tuple[str, ...]  # sorted
    has_access: bool


@dataclass(frozen=True, slots=True)
class StoredGrant:
    codes: tuple[str, ...]
    has_access: bool


@dataclass(slots=True)
class AccessPlan:
    """What replacing the stored snapshot with a report would change."""

    new_users: dict[str, str] = field(default_factory=dict)  # user id -> name
    renamed: dict[str, str] = field(default_factory=dict)
    gone_users: list[str] = field(default_factory=list)
    new_grants: list[GradedGrant] = field(default_factory=list)
    changed_grants: list[tuple[GradedGrant, StoredGrant]] = field(default_factory=list)
    gone_grants: list[tuple[str, str, bool]] = field(default_factory=list)  # user, org, had access
    unchanged: int = 0
    users_before: int = 0

    @property
    def gained(self) -> int:
        """(user, organisation) pairs that will open the dashboard and did not before."""
        return sum(g.has_access for g in self.new_grants) + sum(
            g.has_access and not before.has_access for g, before in self.changed_grants
        )

    @property
    def lost(self) -> int:
        return sum(had for _, _, had in self.gone_grants) + sum(
            before.has_access and not g.has_access for g, before in self.changed_grants
        )

    @property
    def changes(self) -> int:
        return (
            len(self.new_users)
            + len(self.renamed)
            + len(self.gone_users)
            + len(self.new_grants)
            + len(self.changed_grants)
            + len(self.gone_grants)
        )


Flip = tuple[str, str, bool]  # user id, organisation, has access now


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


async def _many(session: AsyncSession, statement: Any, rows: Sequence[dict[str, Any]]) -> None:
    """One INSERT or UPDATE (by primary key) for many rows, a chunk at a time."""
    for chunk in _chunks(rows):
        await session.execute(statement, list(chunk))


async def stored_grants(session: AsyncSession) -> dict[tuple[str, str], StoredGrant]:
    """Every stored (user, organisation) with its codes and verdict."""
    rows = await session.execute(
        sa.select(
            col(AccessGrant.user_id),
            col(AccessGrant.org_code),
            col(AccessGrant.codes),
            col(AccessGrant.has_access),
        )
    )
    return {
        (user, org): StoredGrant(tuple(codes or ()), bool(has))
        for user, org, codes, has in rows.all()
    }


async def plan_access(session: AsyncSession, graded: Sequence[GradedGrant]) -> AccessPlan:
    """Compare a graded report with the stored snapshot; nothing is written."""
    names = await session.execute(sa.select(col(AccessUser.user_id), col(AccessUser.name)))
    users: dict[str, str] = {user: name for user, name in names.all()}
    grants = await stored_grants(session)
    plan = AccessPlan(users_before=len(users))
    listed: dict[str, str] = {}
    for grant in graded:
        listed.setdefault(grant.user_id, grant.name)
        before = grants.get((grant.user_id, grant.org_code))
        if before is None:
            plan.new_grants.append(grant)
        elif before != StoredGrant(grant.codes, grant.has_access):
            plan.changed_grants.append((grant, before))
        else:
            plan.unchanged += 1
    for user, name in listed.items():
        if user not in users:
            plan.new_users[user] = name
        elif users[user] != name:
            plan.renamed[user] = name
    plan.gone_users = sorted(set(users) - set(listed))
    seen = {(g.user_id, g.org_code) for g in graded}
    plan.gone_grants = sorted(
        (user, org, stored.has_access)
        for (user, org), stored in grants.items()
        if (user, org) not in seen
    )
    return plan


async def apply_access(
    session: AsyncSession, plan: AccessPlan, *, source: str, users: int, grants: int, now: datetime
) -> None:
    """Write the plan, its history (who gained and lost access), and the import itself."""
    await _many(
        session,
        sa.insert(AccessUser),
        [{"user_id": u, "name": n, "first_seen_at": now} for u, n in plan.new_users.items()],
    )
    await _many(
        session,
        sa.update(AccessUser),
        [{"user_id": u, "name": n} for u, n in plan.renamed.items()],
    )
    for pairs in _chunks([(user, org) for user, org, _ in plan.gone_grants]):
        await session.execute(
            sa.delete(AccessGrant).where(
                sa.tuple_(col(AccessGrant.user_id), col(AccessGrant.org_code)).in_(pairs)
            )
        )
    for ids in _chunks(plan.gone_users):
        await session.execute(sa.delete(AccessUser).where(col(AccessUser.user_id).in_(ids)))
    rows = [
        {
            "user_id": g.user_id,
            "org_code": g.org_code,
            "codes": list(g.codes),
            "has_access": g.has_access,
            "access_since": now if g.has_access else None,
            "first_seen_at": now,
        }
        for g in plan.new_grants
    ]
    await _many(session, sa.insert(AccessGrant), rows)
    recoded = [
        {"user_id": g.user_id, "org_code": g.org_code, "codes": list(g.codes)}
        for g, before in plan.changed_grants
        if g.codes != before.codes
    ]
    await _many(session, sa.update(AccessGrant), recoded)
    flips = [
        (g.user_id, g.org_code, g.has_access)
        for g, before in plan.changed_grants
        if g.has_access != before.has_access
    ]
    await set_access(session, flips, now=now, cause="import")
    history = [(g.user_id, g.org_code, True) for g in plan.new_grants if g.has_access]
    history += [(user, org, False) for user, org, had in plan.gone_grants if had]
    await record_changes(session, history, now=now, cause="import")
    session.add(AccessImport(imported_at=now, source=source[:200], users=users, grants=grants))


async def set_access(
    session: AsyncSession, flips: Sequence[Flip], *, now: datetime, cause: str
) -> None:
    """Turn access on or off for stored grants, with the history of each change."""
    rows = [
        {
            "user_id": user,
            "org_code": org,
            "has_access": has,
            "access_since": now if has else None,
        }
        for user, org, has in flips
    ]
    await _many(session, sa.update(AccessGrant), rows)
    await record_changes(session, flips, now=now, cause=cause)


async def record_changes(
    session: AsyncSession, changes: Sequence[Flip], *, now: datetime, cause: str
) -> None:
    rows = [
        {"at": now, "user_id": user, "org_code": org, "gained": gained, "cause": cause}
        for user, org, gained in changes
    ]
    await _many(session, sa.insert(AccessChange), rows)


async def prune_history(session: AsyncSession, *, before: datetime) -> int:
    """Forget access changes older than `before` (personal data, kept only so long)."""
    done = await session.execute(sa.delete(AccessChange).where(col(AccessChange.at) < before))
    return int(getattr(done, "rowcount", 0) or 0)


@dataclass(frozen=True, slots=True)
class Purged:
    users: int
    grants: int
    changes: int
    imports: int


async def purge_access(session: AsyncSession) -> Purged:
    """Remove every stored user, grant, change and import record."""
    counts = []
    for table in (AccessGrant, AccessUser, AccessChange, AccessImport):
        done = await session.execute(sa.delete(table))
        counts.append(int(getattr(done, "rowcount", 0) or 0))
    grants, users, changes, imports = counts
    return Purged(users=users, grants=grants, changes=changes, imports=imports)


async def latest_import(session: AsyncSession) -> AccessImport | None:
    query = sa.select(AccessImport).order_by(col(AccessImport.id).desc()).limit(1)
    return (await session.execute(query)).scalar_one_or_none()
