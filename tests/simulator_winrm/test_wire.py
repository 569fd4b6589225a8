"""Pure pieces of the endpoint: durations, logon names, faults, pipelines, PSRP fragments."""

from __future__ import annotations

import os
import struct

import pytest
from pypsrp.wsman import WSMan

from simulator import wsman
from simulator.psrp_pipeline import Invocation, script_of
from simulator.psrp_wire import Defragmenter, PSRPError
from simulator.winrm_auth import NTLM_CREDENTIALS, Account


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT20S", 20.0),
        ("PT20.500S", 20.5),
        ("PT1M30S", 90.0),
        ("P1DT1H", 3600.0),  # capped
        ("", wsman.DEFAULT_OPERATION_TIMEOUT),
        ("PT", wsman.DEFAULT_OPERATION_TIMEOUT),
        ("20", wsman.DEFAULT_OPERATION_TIMEOUT),
    ],
)
def test_operation_timeout_durations(text: str, seconds: float) -> None:
    assert wsman.parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("CMSCAN\\svc-scan", True),
        ("cmscan\\SVC-SCAN", True),
        ("svc-scan", True),
        (".\\svc-scan", True),
        ("OTHERDOM\\svc-scan", False),
        ("CMSCAN\\svc-scanner", False),
        ("", False),
        (None, False),
    ],
)
def test_account_logon_names(name: str | None, accepted: bool) -> None:
    assert Account("CMSCAN\\svc-scan", "pw").names(name) is accepted


def test_account_never_shows_its_password() -> None:
    assert "pw-secret" not in repr(Account("svc-scan", "pw-secret"))


@pytest.mark.parametrize("username", ["", "a:b", "line\nbreak", "DOMAIN\\"])
def test_account_names_are_validated(username: str) -> None:
    with pytest.raises(ValueError, match="username"):
        Account(username, "pw")


def test_one_account_name_cannot_have_two_passwords() -> None:
    first = Account("CMSCAN\\conflict-user", "one")
    NTLM_CREDENTIALS.register(first)
    try:
        with pytest.raises(ValueError, match="another password"):
            NTLM_CREDENTIALS.register(Account("conflict-user", "two"))
        assert os.environ["NTLM_USER_FILE"]
    finally:
        NTLM_CREDENTIALS.unregister(first)


@pytest.mark.parametrize(
    ("fault", "code", "reason"),
    [
        (
            wsman.timed_out(),
            2150858793,
            "The WS-Management service cannot complete the operation within the time "
            "specified in OperationTimeout.",
        ),
        (
            wsman.shells_exceeded(30),
            2150859173,
            "The WS-Management service cannot process the request. This user is allowed a "
            "maximum number of 30 concurrent shells, which has been exceeded. Close existing "
            "shells or raise the quota for this user.",
        ),
    ],
)
def test_faults_read_back_through_pypsrp(fault: wsman.WSManError, code: int, reason: str) -> None:
    parsed = WSMan._parse_wsman_fault(wsman.fault_envelope(fault, "pc-1", "uuid:1").decode())

    assert (parsed.code, parsed.machine, parsed.reason) == (code, "pc-1", reason)


def test_execute_ps_pipelines_run_the_invoked_expression() -> None:
    invocation = Invocation("Invoke-Expression", False, named={"Command": "Get-Date"})

    assert script_of(invocation) == ("Get-Date", {})


def test_scripts_keep_their_parameters() -> None:
    invocation = Invocation("param($Patterns) $Patterns", True, {"Patterns": ["NHS *"]}, [1])

    assert script_of(invocation) == (
        "param($Patterns) $Patterns",
        {"Patterns": ["NHS *"], "args": [1]},
    )


def test_cmdlets_become_one_line_scripts() -> None:
    invocation = Invocation(
        "Get-Service", False, {"Name": "SCardSvr", "ErrorAction": None, "Quiet": True}, ["it's"]
    )

    assert script_of(invocation) == (
        "Get-Service -Name 'SCardSvr' -ErrorAction -Quiet $true 'it''s'",
        {"Name": "SCardSvr", "ErrorAction": None, "Quiet": True},
    )


def _fragment(object_id: int, fragment_id: int, data: bytes, start: bool, end: bool) -> bytes:
    flags = (1 if start else 0) | (2 if end else 0)
    return struct.pack(">QQBI", object_id, fragment_id, flags, len(data)) + data


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x00" * 10, "truncated"),
        (_fragment(1, 0, b"", True, False)[:-4] + struct.pack(">I", 99), "longer"),
        (_fragment(1, 1, b"x", True, True), "fragment id 0"),
        (_fragment(1, 0, b"x", True, False) + _fragment(1, 2, b"y", False, True), "out of order"),
        (_fragment(1, 0, b"short", True, True), "shorter than its header"),
        (_fragment(1, 0, b"\x00" * 40 + b"<Obj", True, True), "not valid CLIXML"),
        (_fragment(1, 0, b"x" * 100, True, False), "larger than"),
    ],
)
def test_defragmenter_refuses_malformed_fragments(data: bytes, error: str) -> None:
    with pytest.raises(PSRPError, match=error):
        Defragmenter(limit=64).feed(data)


def test_defragmenter_reassembles_interleaved_messages() -> None:
    first = b"\x01\x00\x00\x00" + b"\x04\x10\x04\x00" + b"\x00" * 32 + b"<S>one</S>"
    second = b"\x01\x00\x00\x00" + b"\x04\x10\x04\x00" + b"\x00" * 32 + b"<S>two</S>"
    defragmenter = Defragmenter()

    assert defragmenter.feed(_fragment(7, 0, first[:20], True, False)) == []
    [whole] = defragmenter.feed(_fragment(8, 0, second, True, True))
    [split] = defragmenter.feed(_fragment(7, 1, first[20:], False, True))

    assert whole.body is not None
    assert whole.body.text == "two"
    assert split.body is not None
    assert split.body.text == "one"
