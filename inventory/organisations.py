"""The organisations an inventory implies: practices, PCNs, CCGs and ICBs, named where known."""

from __future__ import annotations

from dataclasses import dataclass

from inventory.ods import OdsFile
from inventory.problems import Inventory


@dataclass(frozen=True, slots=True)
class OrgRecord:
    kind: str  # practice, pcn, ccg, icb
    code: str
    name: str | None = None
    parent_code: str | None = None  # practice -> CCG, PCN -> CCG, CCG -> ICB
    ods_status: str | None = None


def organisations(inventory: Inventory, ods: OdsFile | None = None) -> list[OrgRecord]:
    """One record per organisation: from the hosts' codes, the file's names, and ODS."""
    found: dict[tuple[str, str], OrgRecord] = {}

    def add(kind: str, code: str | None, parent: str | None) -> None:
        if code is None:
            return
        key = (kind, code)
        known = found.get(key)
        found[key] = OrgRecord(
            kind,
            code,
            name=inventory.org_names.get(key),
            parent_code=parent or (known.parent_code if known else None),
        )

    for host in inventory.hosts:
        spec = host.spec
        add("practice", spec.practice_code, spec.ccg_code)
        add("pcn", spec.pcn_code, spec.ccg_code)
        add("ccg", spec.ccg_code, spec.icb_code)
        add("icb", spec.icb_code, None)
    if ods is not None:
        # Every practice in the ODS file, so hosts added later find their practice's name.
        for practice in ods.practices.values():
            found[("practice", practice.code)] = OrgRecord(
                "practice",
                practice.code,
                name=inventory.org_names.get(("practice", practice.code)) or practice.name,
                parent_code=practice.ccg_code,
                ods_status=practice.status,
            )
    return list(found.values())
