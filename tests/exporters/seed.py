"""A small fixed fleet written straight into the database: every status, hostile names, history.

NOW is the reports' clock. The hosts cover each status, a stale compliant host, a host without
a CCG, a retired host, waivers, and site and practice names that a spreadsheet would run as
formulas, so one database serves the golden metrics, the API and the export tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from collectors.facts import Facts, PendingReboot, Product
from config.settings import Settings
from engine.grading import product_pairs
from policy import default_policy, evaluate
from store import db
from store.model import (
    CredentialSuspension,
    Host,
    HostState,
    Organisation,
    Scan,
    StatusChange,
)
from tests.daemon.facts_samples import missing_cm, ready

NOW = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)
HOSTILE_SITE = '=HYPERLINK("http://evil.example/","click")'
HOSTILE_PRACTICE = "+SUM(1,2)\r\n@cmd|' /C calc'!A0"
READ_TOKEN = "cmscan_read-token-for-tests-0000000000000000000000"
RESCAN_TOKEN = "cmscan_rescan-token-for-tests-000000000000000000000"


def _with_products(facts: Facts, *products: Product, drop: tuple[str, ...] = ()) -> Facts:
    kept = tuple(p for p in facts.products if not any(p.name.startswith(d) for d in drop))
    return facts.model_copy(update={"products": kept + products})


def old_cm() -> Facts:
    """CM 1.3.1.0 with its port service, waiting for a reboot: fails cm-version and an advisory."""
    waiting = ready().model_copy(update={"pending_reboot": PendingReboot(windows_update=True)})
    return _with_products(
        waiting,
        Product(name="NHS Credential Management", version="1.3.1.0", view="x86"),
        Product(name="NHS Port Service", version="1.4.2.0", view="x86"),
        drop=("NHS Credential Management",),
    )


def old_identity_agent() -> Facts:
    """CM 1.4.2.0 with an Identity Agent too old to be allowed."""
    return _with_products(
        ready(),
        Product(name="NHS Credential Management", version="1.4.2.0", view="x86"),
        Product(name="NHS Port Service", version="1.4.2.0", view="x86"),
        Product(name="NHS Identity Agent", version="2.3.2.0", view="x86"),
        drop=("NHS Credential Management",),
    )


def odd_names() -> Facts:
    """A compliant host whose vendor spelled the product with a version and bitness."""
    return _with_products(
        ready(),
        Product(name="NHS Credential Management 4.1 (x64)", version="4.1.2.0", view="x64"),
        drop=("NHS Credential Management",),
    )


def no_dotnet() -> Facts:
    return ready().model_copy(update={"dotnet_release": None})


def bare() -> Facts:
    """Neither Credential Management nor .NET 4.8 (the latter waived in the seed)."""
    return missing_cm().model_copy(update={"dotnet_release": None})


@dataclass(frozen=True)
class Seeded:
    """What a test may want to compare with."""

    hostnames: tuple[str, ...]  # in service


# hostname, practice, pcn, ccg, icb, site, status, facts, last success (days before NOW),
# last scan (days before NOW), waived rules, enabled
# fmt: off
_HOSTS: list[tuple[Any, ...]] = [
    ("pc01.a81001.nhs.uk", "A81001", "U12345", "00K", "QHM", HOSTILE_SITE, "compliant",
     ready, 0.1, 0.1, (), True),
    ("pc02.a81001.nhs.uk", "A81001", "U12345", "00K", "QHM", "Main surgery", "noncompliant",
     old_cm, 0.2, 0.2, (), True),
    ("pc03.a81001.nhs.uk", "A81001", "U12345", "00K", "QHM", "Main surgery", "noncompliant",
     bare, 0.3, 0.3, ("dotnet-48",), True),
    ("pc04.a81002.nhs.uk", "A81002", "U12345", "00K", "QHM", "-Branch", "unreachable",
     no_dotnet, 10, 0.1, (), True),
    ("pc05.a81002.nhs.uk", "A81002", "U12345", "00K", "QHM", "@Branch", "auth_failed",
     None, None, 0.1, (), True),
    ("pc06.a81002.nhs.uk", "A81002", "U12345", "00K", "QHM", None, "unknown",
     None, None, None, (), True),
    ("pc07.b82001.nhs.uk", "B82001", "U54321", "15N", "QHM", "Health centre", "error",
     None, None, 0.5, (), True),
    ("pc08.b82001.nhs.uk", "B82001", "U54321", "15N", "QHM", "Health centre", "noncompliant",
     old_identity_agent, 0.5, 0.5, (), True),
    ("pc09.b82001.nhs.uk", "B82001", "U54321", "15N", "QHM", "Old room", "noncompliant",
     missing_cm, 1, 1, (), True),  # retired below
    ("pc10.example.nhs.uk", None, None, None, None, "\tTabbed site", "compliant",
     odd_names, 0.2, 0.2, (), False),
    ("pc11.b82001.nhs.uk", "B82001", "U54321", "15N", "QHM", "Health centre", "compliant",
     ready, 8, 8, (), True),
]
# fmt: on
RETIRED = "pc09.b82001.nhs.uk"


def _ago(days: float | None) -> datetime | None:
    return NOW - timedelta(days=days) if days is not None else None


async def seed(database: db.Database) -> Seeded:
    """Write the fixed fleet; the database must be migrated and empty."""
    policy = default_policy()
    organisations = [
        ("ccg", "00K", "NHS Example North CCG", "QHM"),
        ("ccg", "15N", "NHS Example South CCG", "QHM"),
        ("icb", "QHM", "NHS Example ICB", None),
        ("practice", "A81001", "Riverside Surgery", "00K"),
        ("practice", "A81002", HOSTILE_PRACTICE, "00K"),
        ("practice", "B82001", "Hillside Health Centre", "15N"),
    ]
    async with database.write() as session:
        await session.execute(
            sa.insert(Organisation),
            [
                {"kind": k, "code": c, "name": n, "parent_code": p, "updated_at": NOW}
                for k, c, n, p in organisations
            ],
        )
        for index, row in enumerate(_HOSTS):
            name, practice, pcn, ccg, icb, site, status, make, success, scanned, waived, on = row
            host = Host(
                hostname=name,
                address=f"10.0.0.{index + 1}",
                port=5985,
                transport="winrm",
                practice_code=practice,
                pcn_code=pcn,
                ccg_code=ccg,
                icb_code=icb,
                site=site,
                enabled=on,
                first_seen_at=NOW - timedelta(days=30),
                last_seen_at=NOW,
                retired_at=NOW - timedelta(days=1) if name == RETIRED else None,
            )
            session.add(host)
            await session.flush()
            assert host.id is not None
            facts = make() if make is not None else None
            verdict = evaluate(policy, facts, waived=waived) if facts is not None else None
            last_scan = _ago(scanned)
            state = HostState(
                host_id=host.id,
                status=status,
                status_since=last_scan or NOW - timedelta(days=30),
                failing_rules=verdict.failing_ids if verdict else [],
                advisories=verdict.advisory_ids if verdict else [],
                verdict=verdict.to_json() if verdict else None,
                policy_id=policy.id if verdict else None,
                policy_hash=policy.content_hash if verdict else None,
                facts=facts.model_dump(mode="json") if facts else None,
                products=product_pairs(facts) if facts else [],
                facts_at=_ago(success),
                last_scan_at=last_scan,
                last_outcome={
                    "unreachable": "timeout",
                    "auth_failed": "auth_failed",
                    "error": "probe_error",
                }.get(status, "ok" if last_scan else None),
                last_reason="connect timed out" if status == "unreachable" else None,
                last_success_at=_ago(success),
                next_due_at=NOW - timedelta(minutes=5) if index % 2 else NOW + timedelta(hours=4),
            )
            session.add(state)
            if last_scan is not None:
                session.add(
                    Scan(
                        host_id=host.id,
                        started_at=last_scan - timedelta(seconds=2),
                        finished_at=last_scan,
                        outcome=state.last_outcome or "ok",
                        reason=state.last_reason or "",
                        duration_s=2.0,
                        transport="winrm",
                        trigger="schedule",
                        facts=state.facts,
                    )
                )
                session.add(
                    StatusChange(
                        host_id=host.id,
                        at=last_scan,
                        from_status="unknown",
                        to_status=status,
                        reason="; ".join(state.failing_rules) or None,
                    )
                )
        session.add(
            CredentialSuspension(
                profile="ops",
                suspended_at=NOW - timedelta(hours=1),
                until=None,
                failures=3,
                reason="3 authentication failures in 10 minutes",
            )
        )
        session.add(
            CredentialSuspension(
                profile="lifted",
                suspended_at=NOW - timedelta(days=2),
                until=NOW - timedelta(days=1),
                failures=3,
                reason="expired",
            )
        )
    return Seeded(hostnames=tuple(r[0] for r in _HOSTS if r[0] != RETIRED))


def settings(database_url: str, **extra: Any) -> Settings:
    """Settings for the seeded database: a credential profile, two API tokens, no cache."""
    from exporters.auth import token_hash

    values: dict[str, Any] = {
        "database_url": database_url,
        "credentials": {"default": {"username": "svc-cmscan", "password_env": "CMSCAN_PW"}},
        "api": {
            "tokens": [
                {"name": "grafana", "sha256": token_hash(READ_TOKEN), "scopes": ["read"]},
                {
                    "name": "engineer",
                    "sha256": token_hash(RESCAN_TOKEN),
                    "scopes": ["read", "rescan"],
                },
            ]
        },
        "metrics": {"cache": 0},
    }
    values.update(extra)
    return Settings(**values)
