"""Waivers: a host or a whole practice excused from one rule until a date, as stored."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from policy import Policy
from store.model import Host, Waiver

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


async def affected_hosts(session: AsyncSession, waiver: Waiver) -> list[int]:
    """The hosts a waiver covers: its host, or the practice's hosts in service."""
    if waiver.host_id is not None:
        return [waiver.host_id]
    return await _practice_hosts(session, waiver.practice_code)


async def add_waiver(
    session: AsyncSession,
    policy: Policy,
    *,
    rule_id: str,
    until: datetime,
    reason: str,
    created_by: str,
    host_id: int | None,
    practice_code: str | None,
    now: datetime,
) -> tuple[Waiver, list[int]]:
    """Store a waiver of one of `policy`'s rules and return it with the hosts it covers.
    Raises WaiverError for an unknown rule, a past date or an unknown target."""
    if (host_id is None) == (practice_code is None):
        raise WaiverError("a waiver is for one host or for one practice")
    reason = " ".join(reason.split())
    if not reason:
        raise WaiverError("give a reason for the waiver")
    if len(reason) > 500:
        raise WaiverError(f"the reason is {len(reason)} characters long; keep it within 500")
    if until <= now:
        raise WaiverError(f"the waiver would end at {until:%Y-%m-%d %H:%M} UTC, in the past")
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
    return waiver, await affected_hosts(session, waiver)


async def end_waiver(
    session: AsyncSession, waiver_id: int, *, now: datetime
) -> tuple[Waiver, list[int]]:
    """Mark a waiver revoked now; return it with the hosts it covered."""
    waiver = await session.get(Waiver, waiver_id)
    if waiver is None:
        raise WaiverError(f"no waiver #{waiver_id}")
    if waiver.revoked_at is not None:
        raise WaiverError(
            f"waiver #{waiver_id} was already revoked on {waiver.revoked_at:%Y-%m-%d}"
        )
    waiver.revoked_at = now
    return waiver, await affected_hosts(session, waiver)


async def lapsed_waivers(
    session: AsyncSession, *, since: datetime, now: datetime
) -> tuple[list[Waiver], set[int]]:
    """Waivers that ran out in (since, now], and the hosts they covered."""
    query = select(Waiver).where(
        col(Waiver.revoked_at).is_(None), col(Waiver.until) > since, col(Waiver.until) <= now
    )
    lapsed = list((await session.execute(query)).scalars())
    hosts: set[int] = set()
    for waiver in lapsed:
        hosts.update(await affected_hosts(session, waiver))
    return lapsed, hosts
