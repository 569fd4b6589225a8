"""The facts parser over golden probe outputs and hostile ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collectors.facts import (
    MAX_OUTPUT_BYTES,
    Facts,
    ProbeOutputError,
    facts_to_json,
    parse_probe_output,
)

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_compliant_document_parses_to_typed_facts() -> None:
    facts = parse_probe_output(fixture("compliant-win10.json"))
    assert facts.os.build == "19045.4291"
    assert [(p.name, p.version, p.view) for p in facts.products] == [
        ("NHS Credential Management", "4.1.2.0", "x64"),
        ("Oberthur Technologies Authentic Web Pack", "5.2.0.1", "x86"),
    ]
    assert facts.dotnet_release == 533320
    scardsvr = facts.service("scardsvr")
    assert scardsvr is not None
    assert scardsvr.start_type == "Automatic"
    assert facts.smartcard_types[0].minidriver == "msclmd.dll"
    assert facts.cm_listening is True
    assert not facts.pending_reboot.pending
    chrome = facts.browser_policies[0]
    assert chrome.block_third_party_cookies is True
    assert chrome.cookies_allowed_for_urls == ("[*.]localhost",)
    assert facts.probe.patterns[0] == "NHS *"


def test_bare_host_reports_absences_not_errors() -> None:
    facts = parse_probe_output(fixture("bare-win11.json"))
    assert facts.products == ()
    assert facts.dotnet_release is None
    enum_service = facts.service("ScDeviceEnum")
    assert enum_service is not None
    assert not enum_service.present
    assert facts.cm_listening is None
    assert facts.pending_reboot.pending
    assert facts.probe.warnings == ("readers: cannot enumerate SmartCardReader devices",)


def test_windows_powershell_51_pretty_output_with_bom_and_crlf() -> None:
    raw = fixture("ps51-pretty.json")
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw
    assert b"\\u0027" in raw  # ConvertTo-Json 5.1 escapes quotes and <, >, &
    facts = parse_probe_output(raw)
    names = [p.name for p in facts.products]
    assert "NHS Spine Mini Service Provider's Tools & Utilities <x86>" in names
    assert facts.products[3].publisher == "Café IT"
    assert facts.pending_reboot.windows_update
    assert facts.browser_policies[1].cookies_allowed_for_urls == (
        "https://[*.]nhs.uk",
        "[*.]localhost",
    )


def test_text_and_bytes_parse_alike() -> None:
    raw = fixture("compliant-win10.json")
    assert parse_probe_output(raw.decode()) == parse_probe_output(raw)


def test_minimal_document_takes_defaults() -> None:
    facts = parse_probe_output(fixture("minimal.json"))
    assert facts.products == ()
    assert facts.cm_listening is None
    assert facts.service("SCardSvr") is None


def test_canonical_json_round_trips() -> None:
    facts = parse_probe_output(fixture("compliant-win10.json"))
    assert parse_probe_output(facts_to_json(facts)) == facts


def test_unknown_keys_from_a_newer_probe_are_ignored() -> None:
    document = json.loads(fixture("minimal.json"))
    document["tpm"] = {"present": True}
    document["probe"]["host_uptime_s"] = 5
    assert isinstance(parse_probe_output(json.dumps(document)), Facts)


def test_facts_are_frozen() -> None:
    facts = parse_probe_output(fixture("compliant-win10.json"))
    with pytest.raises(ValueError, match="frozen"):
        facts.dotnet_release = 1  # type: ignore[misc]


def _reason(output: str | bytes) -> str:
    with pytest.raises(ProbeOutputError) as caught:
        parse_probe_output(output)
    reason = caught.value.reason
    assert reason == str(caught.value)
    assert len(reason) < 200, "reasons are stored and shown in tables: keep them short"
    return reason


@pytest.mark.parametrize("version", [0, 2, "1", None, 1.5])
def test_unknown_schema_versions_are_refused(version: object) -> None:
    document = json.loads(fixture("minimal.json"))
    document["schema_version"] = version
    assert "unknown schema version" in _reason(json.dumps(document))


def test_missing_schema_version_is_refused() -> None:
    assert "unknown schema version None" in _reason('{"probe": {}}')


def test_output_over_the_cap_is_refused_before_parsing() -> None:
    padding = " " * MAX_OUTPUT_BYTES
    reason = _reason(fixture("minimal.json") + padding.encode())
    assert "exceeds" in reason
    assert str(MAX_OUTPUT_BYTES) in reason


def test_output_at_the_cap_is_accepted() -> None:
    raw = fixture("minimal.json").strip()
    assert parse_probe_output(raw + b" " * (MAX_OUTPUT_BYTES - len(raw))).probe.duration_ms == 0


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("", "empty output"),
        ("   \r\n", "empty output"),
        ('{"schema_version": 1, "probe": ', "malformed JSON at line 1"),
        ("{'schema_version': 1}", "malformed JSON"),
        ("NaN garbage", "malformed JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('"cmscan-probe"', "expected a JSON object, got str"),
        ("42", "expected a JSON object, got int"),
        ("null", "expected a JSON object, got NoneType"),
    ],
)
def test_malformed_and_non_object_output(output: str, expected: str) -> None:
    assert expected in _reason(output)


def test_two_documents_are_malformed() -> None:
    raw = fixture("minimal.json").decode().strip()
    assert "malformed JSON" in _reason(raw + "\n" + raw)


def test_invalid_bytes_do_not_crash() -> None:
    assert "malformed JSON" in _reason(b"\xff\xfe\x00{\x00")


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d.pop("probe"), "probe"),
        (lambda d: d["probe"].update(marker="other-probe"), "probe.marker"),
        (lambda d: d["probe"].update(duration_ms=-1), "probe.duration_ms"),
        (lambda d: d.update(products=[{"name": "NHS X", "view": "arm64"}]), "products.0.view"),
        (lambda d: d.update(products=[{"version": "1.0"}]), "products.0.name"),
        (lambda d: d.update(dotnet_release="4.8"), "dotnet_release"),
        (lambda d: d.update(services=[{"name": "SCardSvr"}]), "services.0.present"),
        (lambda d: d.update(browser_policies=[{"browser": "firefox"}]), "browser_policies.0"),
        (lambda d: d.update(os="Windows"), "os"),
    ],
)
def test_invalid_fields_name_where(change: object, where: str) -> None:
    document = json.loads(fixture("compliant-win10.json"))
    change(document)  # type: ignore[operator]
    reason = _reason(json.dumps(document))
    assert reason.startswith("invalid facts: " + where)


def test_powershell_51_array_quirk_is_refused_not_misread() -> None:
    # {"value": [...], "Count": n} is how 5.1 serialises a pipeline-wrapped array; the probe
    # avoids it, and the parser must not take it for an empty product list.
    assert "invalid facts: products" in _reason(fixture("ps51-array-quirk.json"))


def test_deeply_nested_input_is_an_error_not_a_crash() -> None:
    assert "nested too deeply" in _reason("[" * 100_000 + "]" * 100_000)
    hostile = '{"schema_version": 1, "probe": ' + "[" * 50_000 + "]" * 50_000 + "}"
    assert "nested too deeply" in _reason(hostile)


def test_control_characters_and_lone_surrogates_become_replacement_characters() -> None:
    # Registry strings are UTF-16 and may hold anything; PostgreSQL stores neither NUL nor
    # an unpaired surrogate, and a terminal would act on an escape sequence.
    document = json.loads(fixture("compliant-win10.json"))
    document["products"][0]["name"] = "NHS Credential Management\x00\x1b[2J\x9b"
    document["smartcard_readers"] = ["Reader \ud800 one", "Smiley \U0001f600"]
    text = json.dumps(document)  # ASCII, with \u escapes as the probe writes them
    assert "\\ud800" in text
    for output in (text, text.encode("ascii")):
        facts = parse_probe_output(output)
        assert facts.products[0].name == "NHS Credential Management\ufffd\ufffd[2J\ufffd"
        assert facts.smartcard_readers == ("Reader \ufffd one", "Smiley \U0001f600")
        assert "\\u0000" not in facts_to_json(facts)


def test_a_raw_lone_surrogate_in_text_output_is_not_a_crash() -> None:
    raw = fixture("minimal.json").decode().strip()
    assert "malformed JSON" in _reason(raw[:-1] + '"\ud800"}')
    document = json.loads(raw)
    document["smartcard_readers"] = ["x\ud800"]
    facts = parse_probe_output(json.dumps(document, ensure_ascii=False))
    assert facts.smartcard_readers == ("x\ufffd\ufffd\ufffd",)


def test_a_number_too_long_to_convert_is_malformed_not_a_crash() -> None:
    document = fixture("minimal.json").decode().strip()
    hostile = document[:-1] + ', "dotnet_release": ' + "9" * 5000 + "}"
    assert "number is too long" in _reason(hostile)


def test_a_long_schema_version_is_quoted_briefly() -> None:
    assert "unknown schema version 'xxx" in _reason(json.dumps({"schema_version": "x" * 5000}))
