"""Probe answers: PowerShell -like filtering, the probe's output format, errors, output faults."""

from __future__ import annotations

import json

import pytest

from collectors.facts import MAX_OUTPUT_BYTES, ProbeOutputError, parse_probe_output
from collectors.wildcards import WildcardError, compile_wildcard, like
from simulator import answers
from simulator.behaviour import Fault
from simulator.fleet import FleetOptions, build_fleet
from simulator.profiles import PROFILES, WATCHED_PATTERNS

PROBE = "# cmscan-probe/1\nparam([string[]]$Patterns)\n"


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        ("NHS Credential Management", "NHS *", True),
        ("nhs credential management", "NHS *", True),  # -like ignores case
        ("NHSCredential", "NHS *", False),
        ("NHS ", "NHS *", True),  # * matches nothing too
        ("Oberthur Technologies Authentic Web Pack", "*Authentic*Web*Pack*", True),
        ("IDEMIA Authentic Web Pack", "*idemia*", True),
        ("Google Chrome", "*Oberthur*", False),
        ("abc", "a?c", True),
        ("ac", "a?c", False),
        ("abbc", "a?c", False),
        ("a.c", "a.c", True),  # regex characters are literal
        ("abc", "a.c", False),
        ("a+c", "a+c", True),
        ("b1", "[a-c]1", True),
        ("B1", "[a-c]1", True),
        ("d1", "[a-c]1", False),
        ("x", "[xyz]", True),
        ("-", "[a-]", True),  # a trailing dash is a member
        ("a*c", "a`*c", True),  # backtick escapes a wildcard
        ("abc", "a`*c", False),
        ("[x]", "`[x`]", True),
        ("line\nbreak", "line*", True),
        ("", "*", True),
        ("", "?", False),
    ],
)
def test_like_behaves_as_powershell(text: str, pattern: str, expected: bool) -> None:
    assert like(text, pattern) is expected


@pytest.mark.parametrize("pattern", ["[abc", "a[]b", "[z-a]"])
def test_invalid_wildcards_fail_as_in_powershell(pattern: str) -> None:
    with pytest.raises(WildcardError, match=r"unclosed or empty|backwards range"):
        compile_wildcard(pattern)


@pytest.fixture(scope="module")
def machine() -> answers.Machine:
    return build_fleet(FleetOptions(hosts=5, seed=5)).hosts[0].machine


def test_patterns_filter_products(machine: answers.Machine) -> None:
    setup = PROFILES["compliant-cm-1.4"].setup
    everything = answers.facts(setup, machine, [])
    watched = answers.facts(setup, machine, list(WATCHED_PATTERNS))
    names = {p.name for p in watched.products}
    assert "NHS Credential Management" in names
    assert "NHS Port Service" in names
    assert any("Authentic Web Pack" in n for n in names)
    assert "Microsoft Edge" not in names
    assert {p.name for p in everything.products} > names | {"Microsoft Edge"}
    only_port = answers.facts(setup, machine, ["*port serv*"])
    assert [p.name for p in only_port.products] == ["NHS Port Service"]
    assert answers.facts(setup, machine, ["nothing*"]).products == ()


def test_the_document_is_compact_ascii_json(machine: answers.Machine) -> None:
    result = answers.run_script(
        PROFILES["compliant"].setup, machine, None, PROBE, {"patterns": "NHS *"}
    )
    assert result.error is None
    assert result.output.isascii()
    assert "\n" not in result.output
    assert ", " not in result.output
    facts = parse_probe_output(result.output)
    assert facts.probe.marker == "cmscan-probe"
    assert facts.probe.patterns == ("NHS *",)  # parameter names bind case-insensitively
    assert facts.probe.duration_ms > 0


def test_a_bad_pattern_is_a_powershell_error(machine: answers.Machine) -> None:
    result = answers.run_script(
        PROFILES["compliant"].setup, machine, None, PROBE, {"Patterns": ["[x"]}
    )
    assert result.error is not None
    assert result.error.exception_type.endswith("WildcardPatternException")
    assert result.error.message == "The specified wildcard character pattern is not valid: [x"


@pytest.mark.parametrize(
    ("script", "word"),
    [
        ("Get-Thing -Name x", "Get-Thing"),
        ("  & 'C:\\tools\\x.ps1' -a", "C:\\tools\\x.ps1"),
        ("frobnicate", "frobnicate"),
    ],
)
def test_other_scripts_are_not_recognised(machine: answers.Machine, script: str, word: str) -> None:
    result = answers.run_script(PROFILES["compliant"].setup, machine, None, script, {})
    assert result.error is not None
    assert result.error.message.startswith(
        f"The term '{word}' is not recognized as the name of a cmdlet"
    )
    assert result.error.fully_qualified_error_id == "CommandNotFoundException"
    text = answers.error_text(result.error, script)
    assert "CommandNotFoundException" in text
    assert f"{word} : The term" in text


def test_hostname_answers(machine: answers.Machine) -> None:
    result = answers.run_script(PROFILES["compliant"].setup, machine, None, "$env:COMPUTERNAME", {})
    assert result.output == machine.computer_name
    assert answers.run_script(PROFILES["compliant"].setup, machine, None, "   ", {}).output == ""


def test_output_faults(machine: answers.Machine) -> None:
    setup = PROFILES["compliant"].setup
    params = {"Patterns": list(WATCHED_PATTERNS)}
    malformed = answers.run_script(setup, machine, Fault.MALFORMED_OUTPUT, PROBE, params)
    with pytest.raises(ProbeOutputError, match="malformed JSON"):
        parse_probe_output(malformed.output)
    oversized = answers.run_script(setup, machine, Fault.OVERSIZED_OUTPUT, PROBE, params)
    assert len(oversized.output.encode()) > 3 * MAX_OUTPUT_BYTES
    json.loads(oversized.output)  # well-formed: only the size limit can refuse it
    with pytest.raises(ProbeOutputError, match="exceeds"):
        parse_probe_output(oversized.output)
    failed = answers.run_script(setup, machine, Fault.PROBE_EXCEPTION, PROBE, params)
    assert failed.error is not None
    assert failed.error.category == "PermissionDenied"
    # Faults of the transport leave the answer alone.
    for fault in (Fault.SLOW, Fault.RESET, Fault.QUOTA_EXCEEDED):
        parse_probe_output(answers.run_script(setup, machine, fault, PROBE, params).output)
