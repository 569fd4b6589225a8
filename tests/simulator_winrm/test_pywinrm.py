"""pywinrm, unmodified, against the endpoint: run_ps and run_cmd over HTTP and HTTPS."""

from __future__ import annotations

import asyncio

import pytest
from winrm.exceptions import InvalidCredentialsError

from simulator.behaviour import PowerShellError
from simulator.tls import FleetCA
from simulator.winrm import WinRMEndpoint
from tests.simulator_winrm.clients import pywinrm_session
from tests.simulator_winrm.hosts import ScriptedHost

SCRIPT = "Get-ItemProperty 'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*'"


async def test_run_ps_decodes_the_script_for_the_host(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    host.output = "line one\nline two"
    session = pywinrm_session(endpoint)

    response = await asyncio.to_thread(session.run_ps, SCRIPT)

    assert (response.status_code, response.std_out, response.std_err) == (
        0,
        b"line one\r\nline two\r\n",
        b"",
    )
    assert host.calls == [(SCRIPT, {})]
    assert endpoint.open_shells == 0


async def test_run_ps_error_arrives_as_clixml_on_stderr(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    host.output = ""
    host.error = PowerShellError("The probe failed.", category="InvalidOperation")
    session = pywinrm_session(endpoint)

    response = await asyncio.to_thread(session.run_ps, "throw 'The probe failed.'")

    # pywinrm turns powershell.exe's CLIXML error stream back into text.
    assert response.status_code == 1
    assert response.std_out == b""
    assert response.std_err.decode().splitlines() == [
        "The probe failed.",
        "    + CategoryInfo          : InvalidOperation: (:) [], RuntimeException",
        "    + FullyQualifiedErrorId : RuntimeException",
    ]


async def test_long_scripts_hit_the_cmd_line_limit_as_on_windows(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    """run_ps passes the script on cmd.exe's command line, which stops at 8191 characters."""
    session = pywinrm_session(endpoint)

    response = await asyncio.to_thread(session.run_ps, "# padding\n" * 500)

    assert (response.status_code, response.std_err) == (1, b"The command line is too long.\r\n")
    assert host.calls == []


async def test_run_cmd_with_arguments(endpoint: WinRMEndpoint) -> None:
    session = pywinrm_session(endpoint)

    response = await asyncio.to_thread(session.run_cmd, "echo", ["NHS", "Spine"])

    assert (response.status_code, response.std_out) == (0, b"NHS Spine\r\n")


async def test_wrong_password_is_rejected(endpoint: WinRMEndpoint, host: ScriptedHost) -> None:
    session = pywinrm_session(endpoint, auth=("CMSCAN\\svc-scan", "Wrong-Horse!"))

    with pytest.raises(InvalidCredentialsError):
        await asyncio.to_thread(session.run_ps, SCRIPT)
    assert host.calls == []


@pytest.mark.parametrize("transport", ["ntlm", "ssl"])
async def test_https_verified_against_the_fleet_ca(
    endpoint: WinRMEndpoint, ca: FleetCA, host: ScriptedHost, transport: str
) -> None:
    """`ssl` is pywinrm's name for Basic over HTTPS."""
    session = pywinrm_session(
        endpoint, https=True, transport=transport, ca_trust_path=str(ca.ca_file)
    )

    response = await asyncio.to_thread(session.run_ps, SCRIPT)

    assert (response.status_code, response.std_out) == (0, b'{"cmscan-probe/1": true}\r\n')
    assert host.calls == [(SCRIPT, {})]
