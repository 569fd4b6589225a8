"""Organisations: practices, PCNs, CCGs and ICBs, upserted from inventories and ODS files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from inventory.organisations import OrgRecord
from store.model import Organisation


@dataclass(frozen=True, slots=True)
class OrgSync:
    added: int
    updated: int


async def upsert_organisations(
    session: AsyncSession, *, records: Sequence[OrgRecord], now: datetime
) -> OrgSync:
    """Add unknown organisations and fill in what is newly known; never blank a known value."""
    existing = {
        (o.kind, o.code): o for o in (await session.execute(select(Organisation))).scalars().all()
    }
    new_rows: list[dict[str, object]] = []
    changes: list[dict[str, object]] = []
    for record in records:
        known = existing.get((record.kind, record.code))
        if known is None:
            new_rows.append(
                {
                    "kind": record.kind,
                    "code": record.code,
                    "name": record.name,
                    "parent_code": record.parent_code,
                    "ods_status": record.ods_status,
                    "updated_at": now,
                }
            )
            continue
        merged = {
            column: getattr(record, column)
            if getattr(record, column) is not None
            else getattr(known, column)
            for column in ("name", "parent_code", "ods_status")
        }
        if any(merged[c] != getattr(known, c) for c in merged):
            changes.append({"kind": record.kind, "code": record.code, **merged, "updated_at": now})
    if new_rows:
        await session.execute(insert(Organisation), new_rows)
    if changes:
        await session.execute(update(Organisation), changes)  # bulk update by primary key
    return OrgSync(added=len(new_rows), updated=len(changes))


async def organisation_names(session: AsyncSession, *, kind: str) -> dict[str, str]:
    """Code -> name for one kind of organisation, for reports and exports."""
    rows = await session.execute(
        select(col(Organisation.code), col(Organisation.name)).where(
            col(Organisation.kind) == kind, col(Organisation.name).is_not(None)
        )
    )
    return {code: name for code, name in rows.all() if name}
