"""Waivers: a host or a whole practice excused from one rule until a date, re-graded at once."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from scanner.db import Database
from scanner.model import Host, Waiver, utcnow

if TYPE_CHECKING:
    from scanner.store.policies import RegradeReport

# Keeps IN lists well under SQLite's bound-parameter limit.
_CHUNK = 500

WaiverState = Literal["active", "expired", "revoked"]


class WaiverError(ValueError):
    """A waiver cannot be granted or revoked; the message says why for a person."""


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[start : start + _CHUNK] for start in range(0, len(ids), _CHUNK)]


def _is_active(waiver: Waiver, now: datetime) -> bool:
    return waiver.revoked_at is None and waiver.until > now


async def active_waivers(
    session: AsyncSession, *, host_ids: Collection[int], now: datetime
) -> dict[int, set[str]]:
    """The rule ids waived at `now` for each of `host_ids` (hosts with none are left out).

    A waiver stops applying by itself once `until` has passed; nothing needs to clean it up.
    """
    ids = sorted(set(host_ids))
    if not ids:
        return {}
    query = select(Waiver).where(col(Waiver.revoked_at).is_(None), col(Waiver.until) > now)
    waivers = (await session.execute(query)).scalars().all()
    if not waivers:
        return {}
    wanted = set(ids)
    result: dict[int, set[str]] = {}
    by_practice: dict[str, set[str]] = {}
    for waiver in waivers:
        if waiver.host_id is not None and waiver.host_id in wanted:
            result.setdefault(waiver.host_id, set()).add(waiver.rule_id)
        elif waiver.practice_code is not None:
            by_practice.setdefault(waiver.practice_code, set()).add(waiver.rule_id)
    if by_practice:
        for chunk in _chunks(ids):
            rows = await session.execute(
                select(col(Host.id), col(Host.practice_code)).where(
                    col(Host.id).in_(chunk), col(Host.practice_code).in_(list(by_practice))
                )
            )
            for host_id, practice in rows.all():
                if host_id is not None and practice is not None:
                    result.setdefault(host_id, set()).update(by_practice[practice])
    return result


@dataclass(frozen=True, slots=True)
class WaiverRow:
    """A waiver as listings show it."""

    waiver: Waiver
    hostname: str | None
    state: WaiverState

    @property
    def target(self) -> str:
        if self.hostname is not None:
            return self.hostname
        return f"practice {self.waiver.practice_code}"


def waiver_state(waiver: Waiver, now: datetime) -> WaiverState:
    if waiver.revoked_at is not None:
        return "revoked"
    return "active" if waiver.until > now else "expired"


async def list_waivers(
    session: AsyncSession, *, now: datetime, include_inactive: bool = False
) -> list[WaiverRow]:
    """Waivers, newest first; only those in force unless `include_inactive`."""
    query = (
        select(Waiver, col(Host.hostname))
        .outerjoin(Host, col(Host.id) == col(Waiver.host_id))
        .order_by(col(Waiver.id).desc())
    )
    if not include_inactive:
        query = query.where(col(Waiver.revoked_at).is_(None), col(Waiver.until) > now)
    rows = (await session.execute(query)).all()
    return [WaiverRow(waiver, hostname, waiver_state(waiver, now)) for waiver, hostname in rows]


async def _practice_hosts(session: AsyncSession, practice_code: str | None) -> list[int]:
    query = select(col(Host.id)).where(
        col(Host.practice_code) == practice_code, col(Host.retired_at).is_(None)
    )
    return [host_id for host_id in (await session.execute(query)).scalars() if host_id is not None]


async def _affected_hosts(session: AsyncSession, waiver: Waiver) -> list[int]:
    if waiver.host_id is not None:
        return [waiver.host_id]
    return await _practice_hosts(session, waiver.practice_code)


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
    from scanner.store.policies import get_active_policy, regrade  # policies uses active_waivers

    now = now or utcnow()
    if (host_id is None) == (practice_code is None):
        raise WaiverError("a waiver is for one host or for one practice")
    reason = " ".join(reason.split())
    if not reason:
        raise WaiverError("give a reason for the waiver")
    if len(reason) > 500:
        raise WaiverError(f"the reason is {len(reason)} characters long; keep it within 500")
    if until <= now:
        raise WaiverError(f"the waiver would end at {until:%Y-%m-%d %H:%M} UTC, in the past")
    async with db.write() as session:
        policy = await get_active_policy(session)
        if policy.rule(rule_id) is None:
            raise WaiverError(
                f"unknown rule {rule_id!r}; the active policy {policy.label} has: "
                + ", ".join(policy.rule_ids)
            )
        if host_id is not None:
            host = await session.get(Host, host_id)
            if host is None or host.retired_at is not None:
                raise WaiverError(f"no host with id {host_id} in service")
        else:
            assert practice_code is not None
            practice_code = practice_code.strip().upper()
            if not await _practice_hosts(session, practice_code):
                raise WaiverError(f"no host in service belongs to practice {practice_code}")
        waiver = Waiver(
            host_id=host_id,
            practice_code=practice_code,
            rule_id=rule_id,
            until=until,
            reason=reason,
            created_by=created_by[:100],
            created_at=now,
        )
        session.add(waiver)
        await session.flush()
        hosts = await _affected_hosts(session, waiver)
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
    from scanner.store.policies import get_active_policy, regrade  # policies uses active_waivers

    now = now or utcnow()
    async with db.write() as session:
        waiver = await session.get(Waiver, waiver_id)
        if waiver is None:
            raise WaiverError(f"no waiver #{waiver_id}")
        if waiver.revoked_at is not None:
            raise WaiverError(
                f"waiver #{waiver_id} was already revoked on {waiver.revoked_at:%Y-%m-%d}"
            )
        waiver.revoked_at = now
        hosts = await _affected_hosts(session, waiver)
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
    from scanner.store.policies import get_active_policy, regrade  # policies uses active_waivers

    now = now or utcnow()
    async with db.read() as session:
        query = select(Waiver).where(
            col(Waiver.revoked_at).is_(None), col(Waiver.until) > since, col(Waiver.until) <= now
        )
        lapsed = (await session.execute(query)).scalars().all()
        if not lapsed:
            return None
        hosts: set[int] = set()
        for waiver in lapsed:
            hosts.update(await _affected_hosts(session, waiver))
        policy = await get_active_policy(session)
    if len(lapsed) == 1:
        reason = f"waiver #{lapsed[0].id} ({lapsed[0].rule_id}) expired"
    else:
        reason = f"{len(lapsed)} waivers expired"
    return await regrade(db, policy, reason=reason, now=now, host_ids=hosts)
