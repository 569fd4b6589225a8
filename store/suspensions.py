"""Credential suspensions from the lockout guard, shared by every replica through the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from store.model import CredentialSuspension


@dataclass(frozen=True, slots=True)
class Suspension:
    """A credential profile the lockout guard stopped using; `until` None lasts until resumed."""

    profile: str
    at: datetime
    until: datetime | None
    failures: int
    reason: str


async def record_suspension(session: AsyncSession, suspension: Suspension) -> None:
    """Store a suspension. One still in force is kept as it is; one a cool-down has lifted is
    replaced, or every replica would read the profile as resumed and use it again."""
    existing = await session.get(CredentialSuspension, suspension.profile)
    if existing is None:
        session.add(
            CredentialSuspension(
                profile=suspension.profile,
                suspended_at=suspension.at,
                until=suspension.until,
                failures=suspension.failures,
                reason=suspension.reason[:500],
            )
        )
    elif existing.until is not None and existing.until <= suspension.at:
        existing.suspended_at = suspension.at
        existing.until = suspension.until
        existing.failures = suspension.failures
        existing.reason = suspension.reason[:500]


async def active_suspensions(session: AsyncSession, *, now: datetime) -> list[Suspension]:
    rows = await session.execute(
        sa.select(CredentialSuspension).where(
            sa.or_(col(CredentialSuspension.until).is_(None), col(CredentialSuspension.until) > now)
        )
    )
    return [
        Suspension(
            profile=r.profile,
            at=r.suspended_at,
            until=r.until,
            failures=r.failures,
            reason=r.reason,
        )
        for r in rows.scalars()
    ]


async def resume_profile(session: AsyncSession, *, profile: str) -> bool:
    """Lift a suspension; returns whether there was one."""
    result = await session.execute(
        sa.delete(CredentialSuspension).where(col(CredentialSuspension.profile) == profile)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
