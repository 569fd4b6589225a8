"""Applying policies and waivers to stored facts, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.regrade import apply_policy, regrade
from engine.waiving import grant_waiver, regrade_lapsed_waivers, revoke_waiver
from policy import Policy, default_policy, load_policy_text
from policy.loader import default_policy_text
from store import policies
from store.db import Database
from store.model import PolicyVersion, RescanRequest
from store.policies import get_active_policy
from store.waivers import WaiverError, active_waivers, list_waivers
from tests.policy import builders as b
from tests.policy.store_support import T0, Seed, changes, seed, states

pytestmark = pytest.mark.integration


def variant(old: str, new: str) -> Policy:
    text = default_policy_text()
    assert old in text
    return load_policy_text(text.replace(old, new), "variant.yaml")


STRICT = ('version: ">= 1.4.2.0"', 'version: ">= 4.1.2.0"')  # CM 4.1.2.0 or nothing
LAX_DOTNET = ('dotnet_release: ">= 528040"', 'dotnet_release: ">= 461808"')  # 4.7.2 will do
WIDER = ('  - "*Authentic*Web*Pack*"', '  - "*Authentic*Web*Pack*"\n  - "*SafeNet*"')

FLEET = [
    Seed("cm410.example.nhs.uk", b.facts([b.cm("4.1.0.0"), b.idemia()])),
    Seed("cm412.example.nhs.uk", b.facts(), ccg="15N", practice="B82002"),
    Seed("old-dotnet.example.nhs.uk", b.facts(dotnet=461814)),
    Seed("off.example.nhs.uk", b.facts([b.cm("4.1.0.0"), b.idemia()]), status="unreachable"),
    Seed("never.example.nhs.uk", None),
    Seed("gone.example.nhs.uk", b.facts([b.cm("4.1.0.0"), b.idemia()]), retired=True),
    Seed("garbled.example.nhs.uk", {"schema_version": 1, "probe": "?"}, ccg=None),
]


@pytest.fixture
async def fleet(database: Database) -> dict[str, int]:
    return await seed(database, default_policy(), FLEET)


async def test_the_default_policy_is_active_until_one_is_applied(database: Database) -> None:
    async with database.read() as session:
        assert await get_active_policy(session) is default_policy()
    strict = variant(*STRICT)
    await apply_policy(database, strict, applied_by="alice", now=T0)
    async with database.read() as session:
        active = await get_active_policy(session)
        row = (await session.execute(select(PolicyVersion))).scalar_one()
    assert active.content_hash == strict.content_hash
    assert (row.policy_id, row.content_hash, row.applied_by) == (
        "nhs-cis-baseline",
        strict.content_hash,
        "alice",
    )
    assert row.applied_at == T0
    assert row.content == strict.source


async def test_applying_a_policy_regrades_stored_facts(
    database: Database, fleet: dict[str, int]
) -> None:
    strict = variant(*STRICT)
    report = await apply_policy(database, strict, applied_by="alice", now=T0 + timedelta(hours=1))
    assert report.regraded == 4  # every host in service with readable facts
    assert report.unreadable == ["garbled.example.nhs.uk"]
    assert report.changed == 1
    assert {
        ccg: (c.became_compliant, c.became_noncompliant) for ccg, c in report.by_ccg.items()
    } == {"00K": (0, 1)}
    assert report.needs_rescan == []
    assert report.policy_version_id is not None
    after = await states(database)
    cm410 = after[fleet["cm410.example.nhs.uk"]]
    assert cm410.status == "noncompliant"
    assert cm410.status_since == T0 + timedelta(hours=1)
    assert cm410.failing_rules == ["cm-version"]
    assert cm410.policy_hash == strict.content_hash
    assert cm410.verdict is not None
    assert cm410.verdict["failing"][0]["reason"] == "NHS Credential Management 4.1.0.0 < 4.1.2.0"
    # A host whose last scan failed keeps its status but its verdict follows the policy.
    off = after[fleet["off.example.nhs.uk"]]
    assert (off.status, off.failing_rules, off.policy_hash) == (
        "unreachable",
        ["cm-version"],
        strict.content_hash,
    )
    assert after[fleet["never.example.nhs.uk"]].status == "unknown"
    gone = after[fleet["gone.example.nhs.uk"]]
    assert gone.policy_hash == default_policy().content_hash  # retired: left alone
    assert await changes(database) == [
        (
            fleet["cm410.example.nhs.uk"],
            "compliant",
            "noncompliant",
            f"policy nhs-cis-baseline@{strict.content_hash[:8]} applied",
        )
    ]


async def test_a_laxer_policy_makes_hosts_compliant(
    database: Database, fleet: dict[str, int]
) -> None:
    report = await apply_policy(database, variant(*LAX_DOTNET), applied_by="bob", now=T0)
    assert report.changed == 1
    assert report.by_ccg["00K"].became_compliant == 1
    after = await states(database)
    assert after[fleet["old-dotnet.example.nhs.uk"]].status == "compliant"
    assert after[fleet["old-dotnet.example.nhs.uk"]].failing_rules == []


async def test_a_dry_run_writes_nothing(database: Database, fleet: dict[str, int]) -> None:
    before = await states(database)
    report = await apply_policy(database, variant(*STRICT), applied_by="alice", dry_run=True)
    assert (report.dry_run, report.changed, report.regraded) == (True, 1, 4)
    assert report.policy_version_id is None
    after = await states(database)
    assert {k: (v.status, v.policy_hash) for k, v in after.items()} == {
        k: (v.status, v.policy_hash) for k, v in before.items()
    }
    assert await changes(database) == []
    async with database.read() as session:
        assert (await session.execute(select(PolicyVersion))).first() is None


async def test_regrading_runs_in_batches(
    database: Database, fleet: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(policies, "BATCH", 2)
    report = await regrade(database, variant(*STRICT), reason="test", now=T0)
    assert (report.regraded, report.changed) == (4, 1)
    subset = await regrade(
        database,
        default_policy(),
        reason="back",
        now=T0,
        host_ids=[fleet["cm410.example.nhs.uk"], fleet["never.example.nhs.uk"]],
    )
    assert (subset.regraded, subset.changed) == (1, 1)


async def test_a_policy_watching_more_products_asks_for_a_rescan(
    database: Database, fleet: dict[str, int]
) -> None:
    wider = variant(*WIDER)
    report = await apply_policy(database, wider, applied_by="carol", now=T0)
    expected = sorted(s.hostname for s in FLEET if not s.retired and hasattr(s.facts, "probe"))
    assert sorted(report.needs_rescan) == expected
    assert report.rescan_request_id is None
    async with database.read() as session:
        assert (await session.execute(select(RescanRequest))).first() is None

    report = await apply_policy(database, wider, applied_by="carol", now=T0, rescan=True)
    assert report.rescan_request_id is not None
    async with database.read() as session:
        request = (await session.execute(select(RescanRequest))).scalar_one()
    assert request.id == report.rescan_request_id
    assert sorted(request.selector["hosts"]) == expected
    assert (request.state, request.host_count, request.requested_by) == (
        "pending",
        len(expected),
        "carol",
    )
    after = await states(database)
    waiting = sorted(h for h, state in after.items() if state.rescan_request_id == request.id)
    assert waiting == sorted(fleet[name] for name in expected)


async def test_a_host_waiver_excuses_a_rule_until_revoked(
    database: Database, fleet: dict[str, int]
) -> None:
    host = fleet["old-dotnet.example.nhs.uk"]
    waiver, report = await grant_waiver(
        database,
        rule_id="dotnet-48",
        until=T0 + timedelta(days=30),
        reason="  waiting for   the new PC ",
        created_by="alice",
        host_id=host,
        now=T0,
    )
    assert waiver.id is not None
    assert waiver.reason == "waiting for the new PC"
    assert (report.regraded, report.changed) == (1, 1)
    state = (await states(database))[host]
    assert state.status == "compliant"
    assert state.failing_rules == []
    assert state.verdict is not None
    assert [w["rule"] for w in state.verdict["waived"]] == ["dotnet-48"]
    async with database.read() as session:
        assert await active_waivers(session, host_ids=[host], now=T0) == {host: {"dotnet-48"}}
        assert await active_waivers(session, host_ids=[host], now=T0 + timedelta(days=31)) == {}
        rows = await list_waivers(session, now=T0)
    assert [(r.target, r.state) for r in rows] == [("old-dotnet.example.nhs.uk", "active")]

    _, report = await revoke_waiver(database, waiver.id, revoked_by="bob", now=T0 + timedelta(1))
    assert report.changed == 1
    assert (await states(database))[host].status == "noncompliant"
    assert await changes(database) == [
        (host, "noncompliant", "compliant", f"waiver #{waiver.id} (dotnet-48) granted by alice"),
        (host, "compliant", "noncompliant", f"waiver #{waiver.id} (dotnet-48) revoked by bob"),
    ]
    async with database.read() as session:
        assert await list_waivers(session, now=T0) == []
        rows = await list_waivers(session, now=T0, include_inactive=True)
    assert [r.state for r in rows] == ["revoked"]
    with pytest.raises(WaiverError, match="already revoked"):
        await revoke_waiver(database, waiver.id, revoked_by="bob")


async def test_a_practice_waiver_covers_its_hosts_and_lapses_by_itself(
    database: Database, fleet: dict[str, int]
) -> None:
    strict = variant(*STRICT)
    await apply_policy(database, strict, applied_by="alice", now=T0)
    until = T0 + timedelta(days=7)
    waiver, report = await grant_waiver(
        database,
        rule_id="cm-version",
        until=until,
        reason="CM 4.1.2 rollout next week",
        created_by="alice",
        practice_code=" a81001 ",
        now=T0,
    )
    assert waiver.practice_code == "A81001"
    assert report.changed == 1  # cm410 is compliant again; the others in A81001 were already
    ids = [fleet["cm410.example.nhs.uk"], fleet["old-dotnet.example.nhs.uk"]]
    async with database.read() as session:
        waived = await active_waivers(session, host_ids=ids, now=T0)
        rows = await list_waivers(session, now=T0)
    assert waived == {i: {"cm-version"} for i in ids}
    assert rows[0].target == "practice A81001"
    assert (await states(database))[ids[0]].status == "compliant"

    assert await regrade_lapsed_waivers(database, since=T0, now=until - timedelta(1)) is None
    lapsed = await regrade_lapsed_waivers(database, since=T0, now=until + timedelta(1))
    assert lapsed is not None
    assert lapsed.changed == 1
    assert (await states(database))[ids[0]].status == "noncompliant"
    assert (await changes(database))[-1][3] == f"waiver #{waiver.id} (cm-version) expired"
    async with database.read() as session:
        rows = await list_waivers(session, now=until, include_inactive=True)
    assert [r.state for r in rows] == ["expired"]


async def test_waivers_that_cannot_be(database: Database, fleet: dict[str, int]) -> None:
    host = fleet["cm412.example.nhs.uk"]

    async def grant(**changes: object) -> None:
        arguments: dict[str, object] = {
            "rule_id": "dotnet-48",
            "until": T0 + timedelta(days=1),
            "reason": "r",
            "created_by": "alice",
            "host_id": host,
            "now": T0,
        }
        arguments.update(changes)
        await grant_waiver(database, **arguments)  # type: ignore[arg-type]

    with pytest.raises(
        WaiverError,
        match=r"unknown rule 'dotnet48'; the active policy .* has: "
        r"cm-installed, cm-version, .*, piv-minidriver",
    ):
        await grant(rule_id="dotnet48")
    with pytest.raises(WaiverError, match="in the past"):
        await grant(until=T0)
    with pytest.raises(WaiverError, match="give a reason"):
        await grant(reason="  ")
    with pytest.raises(WaiverError, match="keep it within 500"):
        await grant(reason="x" * 501)
    with pytest.raises(WaiverError, match="no host with id 999999 in service"):
        await grant(host_id=999999)
    with pytest.raises(WaiverError, match="one host or for one practice"):
        await grant(practice_code="A81001")
    with pytest.raises(WaiverError, match="no host in service belongs to practice Z99999"):
        await grant(host_id=None, practice_code="Z99999")
    with pytest.raises(WaiverError, match="no waiver #42"):
        await revoke_waiver(database, 42, revoked_by="alice")
    async with database.read() as session:
        assert await list_waivers(session, now=T0, include_inactive=True) == []
