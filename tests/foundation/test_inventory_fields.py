"""Host names, addresses, ODS code shapes and HostSpec validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from inventory.hostnames import normalise_address, normalise_hostname
from inventory.org_codes import normalise_code
from inventory.spec import HostSpec


@pytest.mark.parametrize(
    ("given_name", "canonical"),
    [
        ("PC01", "pc01"),
        ("  A81001-WS014 ", "a81001-ws014"),
        ("pc01.practice.nhs.uk", "pc01.practice.nhs.uk"),
        ("PC01.Practice.NHS.UK.", "pc01.practice.nhs.uk"),
        ("RECEPTION$1", "reception$1"),  # NetBIOS allows characters DNS does not
        ("x" * 63, "x" * 63),  # a long single DNS label
    ],
)
def test_valid_hostnames(given_name: str, canonical: str) -> None:
    assert normalise_hostname(given_name) == canonical


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "empty"),
        ("10.0.0.1", "IP address"),
        ("pc 01", "characters"),
        ("pc01..nhs.uk", "not a valid DNS name"),
        ("-pc01.nhs.uk", "not a valid DNS name"),
        ("host.123", "numeric top-level"),
        ("RECEPTION$12345678", "15-character NetBIOS"),
        ("a" * 254, "253"),
        ("pc\x00", "characters"),
    ],
)
def test_invalid_hostnames(bad: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalise_hostname(bad)


@given(
    st.from_regex(
        r"[A-Za-z0-9]{1,15}(\.[A-Za-z][A-Za-z0-9-]{0,20}[A-Za-z0-9]){0,3}", fullmatch=True
    )
)
def test_normalising_a_hostname_twice_changes_nothing(name: str) -> None:
    once = normalise_hostname(name)
    assert normalise_hostname(once) == once


@pytest.mark.parametrize(
    ("value", "canonical"),
    [("10.1.2.3", "10.1.2.3"), ("[2001:DB8::1]", "2001:db8::1"), (" fe80::0001 ", "fe80::1")],
)
def test_addresses(value: str, canonical: str) -> None:
    assert normalise_address(value) == canonical


@pytest.mark.parametrize("value", ["10.1.2", "host.example", "10.0.0.256", "::g"])
def test_bad_addresses(value: str) -> None:
    with pytest.raises(ValueError, match="not an IPv4 or IPv6 address"):
        normalise_address(value)


@pytest.mark.parametrize(
    ("kind", "value", "canonical"),
    [
        ("practice", "a81001", "A81001"),
        ("pcn", "U12345", "U12345"),
        ("ccg", "00k", "00K"),
        ("ccg", "15N", "15N"),
        ("ccg", "D2P2L", "D2P2L"),
        ("icb", "qhm", "QHM"),
        ("region", "Y63", "Y63"),
    ],
)
def test_ods_codes(kind: str, value: str, canonical: str) -> None:
    assert normalise_code(kind, value) == canonical


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("practice", "A8100"),
        ("practice", "181001"),
        ("pcn", "X12345"),
        ("ccg", "00"),
        ("ccg", "0000"),
        ("icb", "RHM"),
        ("region", "Y6A"),
    ],
)
def test_bad_ods_codes(kind: str, value: str) -> None:
    with pytest.raises(ValueError, match="code: expected"):
        normalise_code(kind, value)


def test_hostspec_defaults_and_ports() -> None:
    spec = HostSpec(hostname="PC01", transport="ssh", tags="gp; Reception,kiosk gp")
    assert (spec.hostname, spec.port, spec.credential_profile) == ("pc01", 22, "default")
    assert spec.tags == ("gp", "reception", "kiosk")
    assert HostSpec(hostname="pc02", transport="WinRM-HTTPS").port == 5986
    assert HostSpec(hostname="pc03", port="5999").port == 5999
    assert HostSpec(hostname="pc04", port=5999.0).port == 5999


def test_blank_cells_mean_not_given() -> None:
    spec = HostSpec(
        hostname="pc01",
        address=" ",
        port="",
        transport="",
        practice_code="",
        credential_profile="",
        tags="",
    )
    assert (spec.address, spec.port, spec.transport, spec.practice_code) == (
        None,
        5985,
        "winrm",
        None,
    )
    assert spec.credential_profile == "default"
    assert spec.tags == ()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"port": "0"}, "out of range"),
        ({"port": "http"}, "not a port number"),
        ({"port": [5985]}, "not a port number"),  # YAML hands over any type
        ({"port": {"n": 1}}, "not a port number"),
        ({"port": True}, "not a port number"),
        ({"port": 5985.5}, "not a port number"),
        ({"port": 70000}, "out of range"),
        ({"transport": "telnet"}, "not a transport"),
        ({"credential_profile": "bad profile"}, "not a credential profile"),
        ({"tags": "ok;not ok!"}, "is not a tag"),
        ({"site": "Bridge\x07Street"}, "control characters"),
        ({"site": "x" * 201}, "at most 200"),
    ],
)
def test_hostspec_rejects(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HostSpec(hostname="pc01", **fields)  # type: ignore[arg-type]
