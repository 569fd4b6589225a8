"""Importing an inventory into the database: read, validate, plan, and write all-or-nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from inventory.load import Format, load_inventory
from inventory.ods import OdsFile, read_epraccur
from inventory.organisations import organisations
from inventory.problems import Inventory
from store.db import Database
from store.hosts import SyncPlan, apply_sync, plan_sync
from store.model import utcnow
from store.organisations import OrgSync, upsert_organisations
from store.rescans import withdraw_out_of_service

# Retiring more than this share of the fleet in one import is more often the wrong file
# (one CCG's list imported over the whole estate) than a real change; it needs --force.
MASS_RETIRE_SHARE = 0.5
MASS_RETIRE_MIN = 10


@dataclass(slots=True)
class ImportReport:
    """Everything an import found and did; `written` is False for dry runs and refusals."""

    inventory: Inventory
    plan: SyncPlan | None = None
    orgs: OrgSync | None = None
    ods_practices: int = 0
    written: bool = False
    refused: str | None = None  # why nothing was written although the file was valid


def mass_retirement(plan: SyncPlan) -> str | None:
    """A reason to refuse the plan without --force, or None."""
    share = len(plan.retired) / plan.active_before if plan.active_before else 0.0
    if len(plan.retired) >= MASS_RETIRE_MIN and share > MASS_RETIRE_SHARE:
        return (
            f"this import would retire {len(plan.retired)} of {plan.active_before} hosts"
            f" ({share:.0%}); if that is intended run it again with --force, or use --partial"
            " to add and update hosts without retiring any"
        )
    return None


async def import_inventory(
    database: Database,
    *,
    path: Path,
    fmt: Format,
    ods_path: Path | None = None,
    dry_run: bool = False,
    skip_invalid: bool = False,
    retire_missing: bool = True,
    force: bool = False,
    now: datetime | None = None,
) -> ImportReport:
    """Import one inventory file. Raises InventoryFileError only for unreadable files."""
    when = now or utcnow()
    ods: OdsFile | None = read_epraccur(ods_path) if ods_path is not None else None
    inventory = load_inventory(
        path, fmt=fmt, ods=ods, ods_name=ods_path.name if ods_path else "epraccur.csv"
    )
    report = ImportReport(inventory, ods_practices=len(ods.practices) if ods else 0)
    # --skip-invalid imports the valid rows of a readable file; a file with errors and no valid
    # row at all (a YAML syntax error, a CSV without a hostname column) is never a full
    # inventory of nothing, which would retire every host.
    if inventory.errors and not (skip_invalid and inventory.hosts):
        return report
    specs = [host.spec for host in inventory.hosts]
    # Planning inside the write transaction keeps the plan true until it is applied.
    async with database.read() if dry_run else database.write() as session:
        report.plan = await plan_sync(
            session, specs=specs, mentioned=inventory.mentioned, retire_missing=retire_missing
        )
        report.refused = None if force else mass_retirement(report.plan)
        if dry_run or report.refused:
            return report  # nothing was written, so leaving the block commits nothing
        await apply_sync(session, report.plan, specs=specs, source=path.name, now=when)
        await withdraw_out_of_service(session, now=when)
        report.orgs = await upsert_organisations(
            session, records=organisations(inventory, ods), now=when
        )
    report.written = True
    return report
