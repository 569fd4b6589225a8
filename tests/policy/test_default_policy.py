"""Every rule of the shipped NHS CIS baseline, table-driven, and the simulator's profiles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from collectors.facts import Facts, OperatingSystem, Service
from policy import default_policy, evaluate, explain
from tests.policy import builders as b

REQUIRED = [
    "cm-installed",
    "cm-version",
    "port-service",
    "no-identity-hub",
    "ia-version",
    "no-ia-with-smartcard-connect",
    "oberthur-middleware",
    "dotnet-48",
    "scardsvr-enabled",
]
ADVISORY = ["smartcard-reader", "no-pending-reboot", "browser-cookies-localhost", "piv-minidriver"]


@dataclass(frozen=True)
class Case:
    rule: str
    name: str
    facts: Facts
    outcome: str  # pass, fail, not applicable
    reason: str = ""  # the exact one-line reason for a failure

    def __str__(self) -> str:
        return f"{self.rule}: {self.name}"


LOCALHOST = "https://localhost:43485"
CASES = [
    # cm-installed
    Case("cm-installed", "CM 4.1.2.0", b.facts(), "pass"),
    Case("cm-installed", "any case", b.facts([b.product(b.CM.upper(), "4.1.2.0")]), "pass"),
    Case(
        "cm-installed",
        "missing",
        b.facts([b.idemia()]),
        "fail",
        "NHS Credential Management not installed",
    ),
    Case(
        "cm-installed",
        "only Identity Hub",
        b.facts([b.identity_hub(), b.idemia()]),
        "fail",
        "NHS Credential Management not installed",
    ),
    # cm-version
    Case("cm-version", "no CM", b.facts([b.idemia()]), "not applicable"),
    Case("cm-version", "1.4.2.0", b.facts(b.CM14_PRODUCTS), "pass"),
    Case("cm-version", "three-part 1.4.2", b.facts([b.cm("1.4.2"), b.idemia()]), "pass"),
    Case("cm-version", "4.1.0.0", b.facts([b.cm("4.1.0.0"), b.idemia()]), "pass"),
    Case("cm-version", "1.10 is above 1.4", b.facts([b.cm("1.10.0.0"), b.idemia()]), "pass"),
    Case(
        "cm-version",
        "1.3.1.0",
        b.facts([b.cm("1.3.1.0"), b.port_service(), b.idemia()]),
        "fail",
        "NHS Credential Management 1.3.1.0 < 1.4.2.0",
    ),
    Case(
        "cm-version",
        "just below",
        b.facts([b.cm("1.4.1.99"), b.idemia()]),
        "fail",
        "NHS Credential Management 1.4.1.99 < 1.4.2.0",
    ),
    Case(
        "cm-version",
        "junk",
        b.facts([b.cm("latest"), b.idemia()]),
        "fail",
        "NHS Credential Management version 'latest' is not a Windows version",
    ),
    Case(
        "cm-version",
        "no DisplayVersion",
        b.facts([b.product(b.CM, None, "NHS England"), b.idemia()]),
        "fail",
        "NHS Credential Management has no version",
    ),
    Case(
        "cm-version",
        "an old copy left in the other view",
        b.facts([b.cm("4.1.2.0"), b.cm("1.3.1.0", "x86"), b.idemia()]),
        "fail",
        "NHS Credential Management 1.3.1.0 < 1.4.2.0",
    ),
    # port-service
    Case("port-service", "CM 1.4 with it", b.facts(b.CM14_PRODUCTS), "pass"),
    Case(
        "port-service",
        "CM 1.4 without it",
        b.facts([b.cm("1.4.2.0"), b.oberthur()]),
        "fail",
        "NHS Port Service not installed",
    ),
    Case("port-service", "CM 4.1 has no Port Service", b.facts(), "not applicable"),
    Case("port-service", "no CM", b.facts([b.idemia()]), "not applicable"),
    # no-identity-hub
    Case("no-identity-hub", "absent", b.facts(), "pass"),
    Case(
        "no-identity-hub",
        "present",
        b.facts([*b.GOOD_PRODUCTS, b.identity_hub()]),
        "fail",
        "NHS Identity Hub 1.2.0.0 installed",
    ),
    # ia-version
    Case("ia-version", "no Identity Agent", b.facts(), "not applicable"),
    Case(
        "ia-version", "2.4.10.0", b.facts([*b.CM14_PRODUCTS, b.identity_agent("2.4.10.0")]), "pass"
    ),
    Case(
        "ia-version",
        "2.3.2.0",
        b.facts([*b.CM14_PRODUCTS, b.identity_agent("2.3.2.0")]),
        "fail",
        "NHS Identity Agent 2.3.2.0 < 2.4.10.0",
    ),
    Case(
        "ia-version",
        "2.4.9.0 (numeric, not text: 9 < 10)",
        b.facts([*b.CM14_PRODUCTS, b.identity_agent("2.4.9.0")]),
        "fail",
        "NHS Identity Agent 2.4.9.0 < 2.4.10.0",
    ),
    Case(
        "ia-version",
        "Digital Identity Agent 2.3.2.0",
        b.facts([*b.CM14_PRODUCTS, b.identity_agent("2.3.2.0", b.DIGITAL_IA)]),
        "fail",
        "NHS Digital Identity Agent 2.3.2.0 < 2.4.10.0",
    ),
    # no-ia-with-smartcard-connect
    Case(
        "no-ia-with-smartcard-connect",
        "CM 1.4 may keep an Identity Agent",
        b.facts([*b.CM14_PRODUCTS, b.identity_agent("2.4.10.0")]),
        "not applicable",
    ),
    Case("no-ia-with-smartcard-connect", "CM 3.1 alone", b.facts([b.cm("3.1.0.0")]), "pass"),
    Case(
        "no-ia-with-smartcard-connect",
        "CM 4.1 with an Identity Agent",
        b.facts([*b.GOOD_PRODUCTS, b.identity_agent("2.4.10.0")]),
        "fail",
        "NHS Identity Agent 2.4.10.0 installed",
    ),
    # oberthur-middleware
    Case("oberthur-middleware", "IDEMIA Authentic Web Pack", b.facts(), "pass"),
    Case("oberthur-middleware", "Oberthur", b.facts([b.cm(), b.oberthur()]), "pass"),
    Case(
        "oberthur-middleware",
        "Authentic by IDEMIA under another name",
        b.facts([b.cm(), b.product("Authentic Middleware", "5.0", "IDEMIA Technologies")]),
        "pass",
    ),
    Case(
        "oberthur-middleware",
        "missing",
        b.facts([b.cm()]),
        "fail",
        "Oberthur/IDEMIA middleware not installed",
    ),
    Case(
        "oberthur-middleware",
        "an Authentic product by someone else",
        b.facts([b.cm(), b.product("Authentic Web Pack", "1.0", "Contoso")]),
        "fail",
        "Oberthur/IDEMIA middleware not installed",
    ),
    # dotnet-48
    Case("dotnet-48", "4.8.1", b.facts(), "pass"),
    Case("dotnet-48", "exactly 4.8", b.facts(dotnet=528040), "pass"),
    Case(
        "dotnet-48",
        "4.7.2",
        b.facts(dotnet=461814),
        "fail",
        ".NET Framework release 461814 < 528040 (4.8)",
    ),
    Case("dotnet-48", "absent", b.facts(dotnet=None), "fail", ".NET Framework 4.x not installed"),
    # scardsvr-enabled
    Case("scardsvr-enabled", "Manual", b.facts(), "pass"),
    Case("scardsvr-enabled", "Automatic", b.facts(scardsvr="Automatic"), "pass"),
    Case(
        "scardsvr-enabled",
        "Disabled",
        b.facts(scardsvr="Disabled"),
        "fail",
        "SCardSvr start type is Disabled",
    ),
    Case("scardsvr-enabled", "missing", b.facts(scardsvr=None), "fail", "SCardSvr not present"),
    Case(
        "scardsvr-enabled",
        "not reported",
        b.facts(services=[]),
        "fail",
        "SCardSvr was not reported by the probe",
    ),
    Case(
        "scardsvr-enabled",
        "start type unreadable",
        b.facts(services=[Service(name="scardsvr", present=True)]),
        "fail",
        "SCardSvr start type unknown",
    ),
    # smartcard-reader
    Case("smartcard-reader", "one reader", b.facts(), "pass"),
    Case("smartcard-reader", "none", b.facts(readers=()), "fail", "no smartcard reader present"),
    # no-pending-reboot
    Case("no-pending-reboot", "none", b.facts(), "pass"),
    Case(
        "no-pending-reboot",
        "Windows Update",
        b.facts(pending=True),
        "fail",
        "reboot pending (Windows Update)",
    ),
    # browser-cookies-localhost
    Case("browser-cookies-localhost", "no policy", b.facts(), "pass"),
    Case(
        "browser-cookies-localhost",
        "policy says allow",
        b.facts(browsers=[b.cookies("chrome", False), b.cookies("edge", None)]),
        "pass",
    ),
    Case(
        "browser-cookies-localhost",
        "blocked with [*.]localhost",
        b.facts(
            browsers=[
                b.cookies("chrome", True, "[*.]localhost", "[*.]nhs.uk"),
                b.cookies("edge", True, "[*.]nhs.uk", "[*.]localhost"),
            ]
        ),
        "pass",
    ),
    Case(
        "browser-cookies-localhost",
        "blocked with the exact origin",
        b.facts(browsers=[b.cookies("edge", True, LOCALHOST)]),
        "pass",
    ),
    Case(
        "browser-cookies-localhost",
        "Edge blocks without the exception",
        b.facts(browsers=[b.cookies("chrome", None), b.cookies("edge", True, "[*.]nhs.uk")]),
        "fail",
        f"edge blocks third-party cookies without an exception for {LOCALHOST}"
        " (allowed: [*.]nhs.uk)",
    ),
    Case(
        "browser-cookies-localhost",
        "Chrome blocks everything",
        b.facts(browsers=[b.cookies("chrome", True)]),
        "fail",
        f"chrome blocks third-party cookies without an exception for {LOCALHOST}",
    ),
    Case(
        "browser-cookies-localhost",
        "exception for another port",
        b.facts(browsers=[b.cookies("chrome", True, "localhost:8080")]),
        "fail",
        f"chrome blocks third-party cookies without an exception for {LOCALHOST}"
        " (allowed: localhost:8080)",
    ),
    Case(
        "browser-cookies-localhost",
        "exception for http only",
        b.facts(browsers=[b.cookies("chrome", True, "http://[*.]localhost")]),
        "fail",
        f"chrome blocks third-party cookies without an exception for {LOCALHOST}"
        " (allowed: http://[*.]localhost)",
    ),
    # piv-minidriver
    Case("piv-minidriver", "registered", b.facts(), "pass"),
    Case(
        "piv-minidriver",
        "missing",
        b.facts(piv=False),
        "fail",
        "no smart-card type matching '*PIV*' registered",
    ),
]


def test_the_default_policy_has_exactly_the_shared_rule_ids() -> None:
    policy = default_policy()
    assert policy.id == "nhs-cis-baseline"
    assert policy.rule_ids == REQUIRED + ADVISORY
    assert [r.id for r in policy.rules if r.severity == "required"] == REQUIRED
    assert policy.watched_patterns == b.WATCHED
    assert all(rule.remediation for rule in policy.rules)


def test_every_rule_has_cases_that_pass_and_fail() -> None:
    for rule in REQUIRED + ADVISORY:
        outcomes = {case.outcome for case in CASES if case.rule == rule}
        assert {"pass", "fail"} <= outcomes, rule


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rule(case: Case) -> None:
    policy = default_policy()
    result = next(r for r in explain(policy, case.facts) if r.rule.id == case.rule)
    assert result.outcome == case.outcome, result.observed
    verdict = evaluate(policy, case.facts)
    findings = {f.rule_id: f for f in verdict.failing + verdict.advisories}
    if case.outcome == "fail":
        assert findings[case.rule].reason == case.reason
        assert result.observed == case.reason
        severity = "required" if case.rule in REQUIRED else "advisory"
        assert findings[case.rule].severity == severity
        assert findings[case.rule].remediation
    else:
        assert case.rule not in findings


def test_a_well_kept_workstation_is_compliant_without_advisories() -> None:
    verdict = evaluate(default_policy(), b.facts())
    assert verdict.status == "compliant"
    assert verdict.failing == verdict.advisories == verdict.waived == ()


def test_a_legacy_workstation_fails_many_rules_at_once() -> None:
    legacy = b.facts(
        [b.cm("1.3.1.0", "x86"), b.identity_agent("2.3.2.0"), b.identity_hub()],
        dotnet=461814,
        piv=False,
        readers=(),
        pending=True,
    )
    verdict = evaluate(default_policy(), legacy)
    assert verdict.status == "noncompliant"
    assert verdict.failing_ids == [
        "cm-version",
        "port-service",
        "no-identity-hub",
        "ia-version",
        "oberthur-middleware",
        "dotnet-48",
    ]
    assert verdict.advisory_ids == ["smartcard-reader", "no-pending-reboot", "piv-minidriver"]


def _machines() -> list[Any]:
    answers = pytest.importorskip("simulator.answers")
    variants = []
    for vendor in ("oberthur", "idemia"):
        for sign in ("component_based_servicing", "windows_update", "file_rename_operations"):
            for chrome_policy_set in (False, True):
                variants.append(
                    answers.Machine(
                        computer_name=f"PC-{vendor}-{sign}-{chrome_policy_set}",
                        os=OperatingSystem(caption="Microsoft Windows 11 Pro", version="10.0"),
                        ordinary_software=(b.product("Microsoft Edge", "131.0", "Microsoft"),),
                        readers=(b.READER,),
                        middleware_vendor=vendor,
                        install_date="20250601",
                        user_logged_on=chrome_policy_set,
                        reboot_sign=sign,
                        chrome_policy_set=chrome_policy_set,
                        duration_ms=800,
                    )
                )
    return variants


def test_every_simulator_profile_gets_the_verdict_it_declares() -> None:
    profiles = pytest.importorskip("simulator.profiles")
    answers = pytest.importorskip("simulator.answers")
    policy = default_policy()
    assert tuple(profiles.REQUIRED_RULES) == tuple(REQUIRED)
    assert tuple(profiles.ADVISORY_RULES) == tuple(ADVISORY)
    assert tuple(profiles.WATCHED_PATTERNS) == policy.watched_patterns
    disagreements = []
    for profile in profiles.PROFILES.values():
        for machine in _machines():
            facts = answers.facts(profile.setup, machine, policy.watched_patterns)
            verdict = evaluate(policy, facts)
            got = (verdict.status, tuple(verdict.failing_ids), tuple(verdict.advisory_ids))
            want = (
                profile.expected_status,
                tuple(profile.expected_failing_rules),
                tuple(profile.expected_advisories),
            )
            if got != want:
                disagreements.append(f"{profile.name} on {machine.computer_name}: {got} != {want}")
    assert not disagreements, "\n".join(disagreements)
