"""Condition kinds beyond the baseline's, waivers in a verdict, and the stored verdict form."""

from __future__ import annotations

import pytest

from collectors.facts import Service, SmartCardType
from policy import Verdict, default_policy, evaluate, explain, load_policy_text
from policy.browser_conditions import SitePattern
from tests.policy import builders as b


def policy_with(check: str, when: str | None = None, severity: str = "required") -> str:
    when_line = f"    when: {when}\n" if when else ""
    return (
        "format: 1\nid: t\ntitle: T\nwatch: ['*']\nrules:\n"
        f"  - id: r\n    title: R\n    severity: {severity}\n    remediation: fix\n"
        f"{when_line}    check: {check}\n"
    )


def outcome(check: str, facts: object, when: str | None = None) -> tuple[str, str]:
    policy = load_policy_text(policy_with(check, when))
    (result,) = explain(policy, facts)  # type: ignore[arg-type]
    return result.outcome, result.observed


@pytest.mark.parametrize(
    ("check", "facts", "expected"),
    [
        (
            "{product: {name: '^NHS (Digital )?Identity Agent$', match: regex}}",
            b.facts([b.identity_agent("2.4.10.0", b.DIGITAL_IA)]),
            ("pass", "NHS Digital Identity Agent 2.4.10.0 installed"),
        ),
        (
            "{product: {name: 'identity agent', match: regex}}",
            b.facts([b.identity_agent("2.4.10.0")]),
            ("pass", "NHS Identity Agent 2.4.10.0 installed"),
        ),
        (
            "{product: {name: 'NHS Credential Management', publisher: 'NHS Digital'}}",
            b.facts(),
            (
                "fail",
                "no product matching 'NHS Credential Management' by publisher 'NHS Digital'"
                " installed",
            ),
        ),
        (
            "{product: {name: 'NHS Cre?ential Management', version: '>= 4.0, < 4.2'}}",
            b.facts(),
            ("pass", "NHS Credential Management 4.1.2.0 >= 4.0, < 4.2"),
        ),
        (
            "{product: {name: 'NHS [CD]redential*', version: '< 4.1'}}",
            b.facts(),
            ("fail", "NHS Credential Management 4.1.2.0 >= 4.1"),
        ),
        (
            "{product: {name: 'NHS `[CD`]*'}}",  # a backtick makes [ literal
            b.facts([b.product("NHS [CD] Tool", "1")]),
            ("pass", "NHS [CD] Tool 1 installed"),
        ),
        (
            "{not: {product: {name: 'NHS *', version: '>= 5'}}}",
            b.facts(),
            ("pass", "NHS Credential Management 4.1.2.0 < 5"),
        ),
        (
            "{dotnet_release: '== 461814'}",
            b.facts(dotnet=461814),
            ("pass", ".NET Framework release 461814 == 461814"),
        ),
        (
            "{service: {name: SCardSvr, state: Running, start_type: [Automatic]}}",
            b.facts(),
            ("fail", "SCardSvr start type is Manual (expected Automatic)"),
        ),
        (
            "{service: {name: SCardSvr, state: [Running, Paused], start_type: [manual]}}",
            b.facts(),
            ("pass", "SCardSvr present, start type Manual, state Running"),
        ),
        (
            "{service: {name: SCardSvr, state_not: Running}}",
            b.facts(),
            ("fail", "SCardSvr state is Running"),
        ),
        (
            "{service: {name: SCardSvr, present: false}}",
            b.facts(scardsvr=None),
            ("pass", "SCardSvr not present"),
        ),
        (
            "{service: {name: SCardSvr, present: false}}",
            b.facts(),
            ("fail", "SCardSvr is present"),
        ),
        (
            "{smartcard_reader: false}",
            b.facts(readers=["R1", "R2", "R3"]),
            ("fail", "smartcard reader present: R1, R2 and 1 more"),
        ),
        (
            "{card_type: {name: '*PIV*', minidriver: 'other.dll'}}",
            b.facts(),
            (
                "fail",
                "smart-card type Identity Device (NIST SP 800-73 [PIV]) uses minidriver"
                " msclmd.dll, not 'other.dll'",
            ),
        ),
        (
            "{card_type: {name: '*PIV*', minidriver: 'MSCLMD.DLL'}}",
            b.facts(),
            (
                "pass",
                "smart-card type Identity Device (NIST SP 800-73 [PIV]) registered"
                " (minidriver msclmd.dll)",
            ),
        ),
        (
            "{card_type: {name: '*PIV*'}}",
            b.facts(card_types=[SmartCardType(name="Identity Device (NIST SP 800-73 [PIV])")]),
            (
                "pass",
                "smart-card type Identity Device (NIST SP 800-73 [PIV]) registered"
                " (minidriver none)",
            ),
        ),
        ("{pending_reboot: true}", b.facts(), ("fail", "no reboot pending")),
        ("{cm_listening: true}", b.facts(), ("pass", "Credential Management listens on localhost")),
        (
            "{any_of: [{dotnet_release: '>= 999999'}, {smartcard_reader: false}]}",
            b.facts(),
            (
                "fail",
                ".NET Framework release 533320 < 999999; smartcard reader present:"
                " Identiv uTrust 2700 R Smart Card Reader 0",
            ),
        ),
        (
            "{any_of: [{dotnet_release: '>= 999999'}, {pending_reboot: false}]}",
            b.facts(),
            ("pass", "no reboot pending"),
        ),
        (
            "{all_of: [{pending_reboot: false}, {smartcard_reader: true}]}",
            b.facts(readers=[]),
            ("fail", "no smartcard reader present"),
        ),
        (
            "{all_of: [{pending_reboot: false}, {dotnet_release: '>= 528040'}]}",
            b.facts(),
            ("pass", "no reboot pending; .NET Framework release 533320 >= 528040 (4.8)"),
        ),
        (
            "{browser_cookies: {url: 'https://cm.example.nhs.uk', browsers: [edge]}}",
            b.facts(browsers=[b.cookies("chrome", True), b.cookies("edge", True, "[*.]nhs.uk")]),
            ("pass", "edge allows https://cm.example.nhs.uk via [*.]nhs.uk"),
        ),
    ],
)
def test_condition(check: str, facts: object, expected: tuple[str, str]) -> None:
    assert outcome(check, facts) == expected


def test_a_rule_that_does_not_apply_says_why() -> None:
    assert outcome("{pending_reboot: false}", b.facts(), when="{smartcard_reader: false}") == (
        "not applicable",
        "smartcard reader present: Identiv uTrust 2700 R Smart Card Reader 0",
    )


def test_services_that_the_probe_cannot_see() -> None:
    facts = b.facts(services=[Service(name="SCardSvr", present=True, start_type="Manual")])
    assert outcome("{service: {name: SCardSvr, state: Running}}", facts) == (
        "fail",
        "SCardSvr state unknown",
    )


@pytest.mark.parametrize(
    ("pattern", "url", "matches"),
    [
        ("[*.]localhost", "https://localhost:43485", True),
        ("[*.]localhost", "https://a.b.localhost:1", True),
        ("localhost", "https://localhost:43485", True),
        ("localhost", "https://a.localhost:43485", False),
        ("[*.]localhost:43485", "https://localhost:43485", True),
        ("[*.]localhost:43486", "https://localhost:43485", False),
        ("https://localhost:*", "https://localhost:43485", True),
        ("https://[*.]localhost/path/ignored", "https://localhost:43485", True),
        ("http://localhost", "https://localhost:43485", False),
        ("*://localhost", "https://localhost:43485", True),
        ("*", "https://localhost:43485", True),
        ("[*.]", "https://localhost:43485", True),
        ("LOCALHOST", "https://localhost:43485", True),
        ("mylocalhost", "https://localhost:43485", False),
        ("[*.]example.com", "https://example.com", True),
        ("example.com:443", "https://example.com", True),
        ("[::1]", "https://[::1]:43485", True),
        ("[::1]:43485", "https://[::1]:43485", True),
        ("localhost:port", "https://localhost:43485", False),
    ],
)
def test_site_patterns(pattern: str, url: str, matches: bool) -> None:
    from urllib.parse import urlsplit

    parsed = SitePattern.parse(pattern)
    parts = urlsplit(url)
    port = parts.port or 443
    got = parsed is not None and parsed.matches(parts.scheme, parts.hostname or "", port)
    assert got is matches


def test_a_waived_rule_does_not_make_a_host_noncompliant() -> None:
    policy = default_policy()
    facts = b.facts(dotnet=461814, readers=())
    verdict = evaluate(policy, facts, waived={"dotnet-48", "smartcard-reader", "cm-installed"})
    assert verdict.status == "compliant"
    assert verdict.failing == verdict.advisories == ()
    assert verdict.waived_ids == ["dotnet-48", "smartcard-reader"]  # a passing rule is not waived
    results = {r.rule.id: r.outcome for r in explain(policy, facts, waived={"dotnet-48"})}
    assert results["dotnet-48"] == "waived"
    assert results["cm-installed"] == "pass"


def test_the_stored_verdict_round_trips() -> None:
    policy = default_policy()
    verdict = evaluate(policy, b.facts(dotnet=461814, pending=True), waived=["scardsvr-enabled"])
    stored = verdict.to_json()
    assert stored["policy_id"] == "nhs-cis-baseline"
    assert stored["policy_hash"] == policy.content_hash
    assert stored["status"] == "noncompliant"
    assert stored["failing"] == [
        {
            "rule": "dotnet-48",
            "title": ".NET Framework 4.8 or later is installed",
            "severity": "required",
            "reason": ".NET Framework release 461814 < 528040 (4.8)",
        }
    ]
    back = Verdict.from_json(stored)
    assert back.to_json() == stored
    assert back.failing_ids == ["dotnet-48"]
    assert back.advisory_ids == ["no-pending-reboot"]


def test_a_damaged_stored_verdict_reads_as_far_as_it_can() -> None:
    back = Verdict.from_json({"failing": [{"rule": "x"}, "junk"], "advisories": None})
    assert back.failing_ids == ["x"]
    assert back.status == "noncompliant"
