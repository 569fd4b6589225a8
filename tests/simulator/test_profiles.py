"""The profile catalogue: valid facts, declared verdicts that agree with the rule table, changes."""

from __future__ import annotations

import random

import pytest

from collectors.facts import Facts, parse_probe_output
from collectors.probe import stdin_invocation
from simulator import answers
from simulator.behaviour import Fault
from simulator.fleet import FleetOptions, build_fleet
from simulator.profiles import (
    ACTIONS,
    ADVISORY_RULES,
    FAULT_EXPECTATIONS,
    PROFILES,
    REQUIRED_RULES,
    WATCHED_PATTERNS,
    Profile,
    mix_profiles,
    transition,
)
from tests.simulator.reference_rules import failing_rules

PROBE = "<# cmscan-probe/1 #>\nparam([string[]]$Patterns)\n$ProbeVersion = '1.0.0'\n"


def _machines() -> list[answers.Machine]:
    fleet = build_fleet(FleetOptions(hosts=40, seed=11))
    return [h.machine for h in fleet]


@pytest.mark.parametrize("profile", PROFILES.values(), ids=lambda p: p.name)
def test_every_profile_renders_valid_facts_with_its_declared_verdict(profile: Profile) -> None:
    for machine in _machines():
        result = answers.run_script(
            profile.setup, machine, None, PROBE, {"Patterns": list(WATCHED_PATTERNS)}
        )
        assert result.error is None
        facts = parse_probe_output(result.output)
        assert isinstance(facts, Facts)
        assert facts.probe.version == "1.0.0"
        assert facts.probe.patterns == WATCHED_PATTERNS
        required, advisory = failing_rules(facts)
        assert sorted(required) == sorted(profile.expected_failing_rules), machine.computer_name
        assert sorted(advisory) == sorted(profile.expected_advisories), machine.computer_name
        assert (profile.expected_status == "compliant") == (not required)


def test_profiles_cover_the_domain() -> None:
    failing = {r for p in PROFILES.values() for r in p.expected_failing_rules}
    advisories = {r for p in PROFILES.values() for r in p.expected_advisories}
    assert failing == set(REQUIRED_RULES)
    assert advisories == set(ADVISORY_RULES)
    setups = [p.setup for p in PROFILES.values()]
    assert {s.cm_version for s in setups} >= {None, "1.3.1.0", "1.4.2.0", "3.1.0.0", "4.1.0.0"}
    assert {s.cm_view for s in setups if s.cm_version} == {"x64", "x86"}
    assert {s.dotnet_release for s in setups} >= {461814, 528040, 533320}
    assert {s.cookies for s in setups} == {"allowed", "blocked", "blocked-with-localhost"}


def test_mixes() -> None:
    assert all(p.expected_status == "compliant" for p, _ in mix_profiles("all-good"))
    assert all(not p.expected_advisories for p, _ in mix_profiles("all-good"))
    assert all(p.expected_status == "noncompliant" for p, _ in mix_profiles("all-bad"))
    with pytest.raises(ValueError, match="unknown profile mix"):
        mix_profiles("most-good")


@pytest.mark.parametrize("action", ACTIONS)
def test_every_change_lands_on_a_declared_profile_or_is_refused(action: str) -> None:
    for profile in PROFILES.values():
        target = transition(profile, action)
        if target is None:
            continue
        assert target.name in PROFILES
        assert target.setup == ACTIONS[action].apply(profile.setup)


def test_remediations_the_demo_relies_on() -> None:
    steps = [
        ("cm-missing", "install-cm-4.1", "cm-4.1.0-pending-reboot"),
        ("cm-4.1.0-pending-reboot", "reboot", "compliant-cm-4.1.0"),
        ("cm-1.3.1", "install-cm-4.1", "cm-4.1.0-pending-reboot"),
        ("identity-hub", "install-cm-4.1", "cm-4.1.0-pending-reboot"),
        ("no-middleware", "install-middleware", "pending-reboot"),
        ("pending-reboot", "reboot", "compliant"),
        ("identity-agent-with-smartcard-connect", "remove-identity-agent", "compliant"),
        ("identity-agent-old", "remove-identity-agent", "compliant-cm-1.4"),
        ("dotnet-4.7.2", "install-dotnet-4.8", "cm-1.4-dotnet-4.8.0-pending-reboot"),
        ("smartcard-service-disabled", "enable-smartcard-service", "compliant"),
        ("cookies-blocked", "allow-localhost-cookies", "compliant-cookies-localhost"),
        ("compliant", "install-cm-4.1", "compliant"),  # no downgrade
    ]
    for before, action, after in steps:
        target = transition(PROFILES[before], action)
        assert target is not None, (before, action)
        assert target.name == after, (before, action)
    assert transition(PROFILES["legacy-estate"], "install-cm-4.1") is None
    with pytest.raises(ValueError, match="unknown action"):
        transition(PROFILES["compliant"], "format-c")


def test_every_fault_has_an_expectation() -> None:
    assert set(FAULT_EXPECTATIONS) == set(Fault)
    assert FAULT_EXPECTATIONS[Fault.SLOW].status is None


def test_stdin_invocation_reaches_the_same_answer() -> None:
    # What the SSH endpoint decodes is what the WinRM endpoint gets as a parameter.
    from collectors.probe import parse_stdin_invocation

    parsed = parse_stdin_invocation(stdin_invocation(PROBE, WATCHED_PATTERNS))
    assert parsed is not None
    script, patterns = parsed
    machine = random.Random(1).choice(_machines())
    result = answers.run_script(
        PROFILES["compliant"].setup, machine, None, script, {"Patterns": patterns}
    )
    assert parse_probe_output(result.output).probe.patterns == WATCHED_PATTERNS
