"""pypsrp, unmodified, against the endpoint over HTTP (NTLM, Negotiate) and HTTPS (NTLM, Basic)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from pypsrp.exceptions import AuthenticationError, WinRMTransportError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.shell import Process, SignalCode, WinRS

from collectors.probe import SSH_COMMAND, stdin_invocation
from simulator.behaviour import PowerShellError
from simulator.tls import FleetCA
from simulator.winrm import WinRMEndpoint
from tests.simulator_winrm.clients import pypsrp_client
from tests.simulator_winrm.hosts import ACCOUNT, ScriptedHost

PATTERNS = ["NHS *", "*Oberthur*", "*IDEMIA*", "*Authentic*Web*Pack*"]


@pytest.mark.parametrize("auth", ["ntlm", "negotiate"])
async def test_execute_ps_over_http_with_message_encryption(
    endpoint: WinRMEndpoint, host: ScriptedHost, auth: str
) -> None:
    host.output = "first line\nsecond line\n"

    def run() -> tuple[str, bool]:
        with pypsrp_client(endpoint, auth=auth, encryption="always") as client:
            output, _streams, had_errors = client.execute_ps("Get-Thing -Name 'x'")
        return output, had_errors

    output, had_errors = await asyncio.to_thread(run)

    # execute_ps pipes the script through Invoke-Expression | Out-String -Stream.
    assert (output, had_errors) == ("first line\nsecond line", False)
    assert host.calls == [("Get-Thing -Name 'x'", {})]
    assert endpoint.open_shells == 0


async def test_runspace_pool_passes_script_parameters_to_the_host(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    host.output = '{"schema": 1}'

    def run() -> tuple[list[object], bool]:
        with pypsrp_client(endpoint) as client, RunspacePool(client.wsman) as pool:
            shell = PowerShell(pool)
            shell.add_script("param([string[]]$Patterns) 'probe'")
            shell.add_parameter("Patterns", PATTERNS)
            output = shell.invoke()
            return output, shell.had_errors

    output, had_errors = await asyncio.to_thread(run)

    assert (output, had_errors) == (['{"schema": 1}'], False)
    assert host.calls == [("param([string[]]$Patterns) 'probe'", {"Patterns": PATTERNS})]
    assert endpoint.open_shells == 0


async def test_one_pool_runs_several_pipelines(endpoint: WinRMEndpoint, host: ScriptedHost) -> None:
    def run() -> list[list[object]]:
        with (
            pypsrp_client(endpoint, auth="negotiate") as client,
            RunspacePool(client.wsman) as pool,
        ):
            outputs = []
            for n in range(3):
                shell = PowerShell(pool)
                shell.add_script(f"'{n}'")
                outputs.append(shell.invoke())
                shell.close()
            return outputs

    host.output = "same"
    outputs = await asyncio.to_thread(run)

    assert outputs == [["same"], ["same"], ["same"]]
    assert [script for script, _ in host.calls] == ["'0'", "'1'", "'2'"]


async def test_terminating_error_reaches_the_error_stream(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    host.output = "partial"
    host.error = PowerShellError(
        "Cannot find path 'HKLM:\\SOFTWARE\\Nope' because it does not exist.",
        category="ObjectNotFound",
        fully_qualified_error_id="PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand",
        exception_type="System.Management.Automation.ItemNotFoundException",
    )

    def run() -> tuple[list[Any], bool, list[Any]]:
        with pypsrp_client(endpoint) as client, RunspacePool(client.wsman) as pool:
            shell = PowerShell(pool)
            shell.add_script("Get-Item HKLM:\\SOFTWARE\\Nope")
            output = shell.invoke()
            return output, shell.had_errors, shell.streams.error

    output, had_errors, errors = await asyncio.to_thread(run)

    assert output == ["partial"]
    assert had_errors
    [record] = errors
    assert str(record) == "Cannot find path 'HKLM:\\SOFTWARE\\Nope' because it does not exist."
    assert record.fq_error == "PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand"
    assert record.category == 13  # ErrorCategory.ObjectNotFound
    assert record.reason == "ItemNotFoundException"
    assert record.message == "ObjectNotFound: (:) [], ItemNotFoundException"


async def test_execute_cmd_runs_encoded_powershell_and_builtins(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    host.output = "from powershell"
    encoded = base64.b64encode("Get-Service SCardSvr".encode("utf-16-le")).decode()

    def run() -> list[tuple[str, str, int]]:
        with pypsrp_client(endpoint, auth="negotiate") as client:
            return [
                client.execute_cmd(f"powershell.exe -NoProfile -EncodedCommand {encoded}"),
                client.execute_cmd("echo ready"),
                client.execute_cmd("hostname"),
                client.execute_cmd("ipconfig /all"),
            ]

    results = await asyncio.to_thread(run)

    assert results == [
        ("from powershell\r\n", "", 0),
        ("ready\r\n", "", 0),
        ("pc-0042\r\n", "", 0),
        (
            "",
            "'ipconfig' is not recognized as an internal or external command,\r\n"
            "operable program or batch file.\r\n",
            1,
        ),
    ]
    assert host.calls == [("Get-Service SCardSvr", {})]
    assert endpoint.open_shells == 0


async def test_cmd_shell_reads_the_probe_invocation_from_stdin(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    """The one-line invocation the SSH transport feeds to `powershell -Command -` also works
    through a WinRS cmd shell."""
    host.output = "facts"

    def run() -> tuple[bytes, int | None]:
        with pypsrp_client(endpoint) as client, WinRS(client.wsman) as shell:
            process = Process(shell, SSH_COMMAND)
            process.begin_invoke()
            process.send(stdin_invocation("param($Patterns) 'probe'", PATTERNS).encode(), end=True)
            process.end_invoke()
            process.signal(SignalCode.TERMINATE)
            return process.stdout, process.rc

    assert await asyncio.to_thread(run) == (b"facts\r\n", 0)
    assert host.calls == [("param($Patterns) 'probe'", {"Patterns": PATTERNS})]


@pytest.mark.parametrize(
    "username", [ACCOUNT.username, "svc-scan", ".\\svc-scan", "cmscan\\SVC-SCAN"]
)
async def test_both_logon_name_forms_are_accepted(endpoint: WinRMEndpoint, username: str) -> None:
    def run() -> str:
        with pypsrp_client(endpoint, username=username) as client:
            return client.execute_ps("1")[0]

    assert await asyncio.to_thread(run) == '{"cmscan-probe/1": true}'


@pytest.mark.parametrize("auth", ["ntlm", "negotiate"])
async def test_wrong_password_is_an_authentication_error(
    endpoint: WinRMEndpoint, host: ScriptedHost, auth: str
) -> None:
    def run() -> None:
        with pypsrp_client(endpoint, auth=auth, password="Wrong-Horse!") as client:
            client.execute_ps("1")

    with pytest.raises(AuthenticationError, match="Failed to authenticate the user"):
        await asyncio.to_thread(run)
    assert host.calls == []


async def test_another_user_is_refused(endpoint: WinRMEndpoint) -> None:
    def run() -> None:
        with pypsrp_client(endpoint, username="CMSCAN\\someone-else") as client:
            client.execute_ps("1")

    with pytest.raises(AuthenticationError):
        await asyncio.to_thread(run)


async def test_unencrypted_messages_over_http_are_refused(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    """AllowUnencrypted=false, as on Windows: authenticated but clear-text SOAP gets HTTP 500."""

    def run() -> None:
        with pypsrp_client(endpoint, encryption="never") as client:
            client.execute_ps("1")

    with pytest.raises(WinRMTransportError) as caught:
        await asyncio.to_thread(run)
    assert caught.value.code == 500
    assert host.calls == []


async def test_basic_is_refused_over_http(endpoint: WinRMEndpoint) -> None:
    def run() -> None:
        with pypsrp_client(endpoint, auth="basic", encryption="never") as client:
            client.execute_ps("1")

    with pytest.raises(AuthenticationError):
        await asyncio.to_thread(run)


@pytest.mark.parametrize("auth", ["ntlm", "negotiate", "basic"])
async def test_https_with_certificate_verification(
    endpoint: WinRMEndpoint, ca: FleetCA, host: ScriptedHost, auth: str
) -> None:
    def run() -> tuple[str, bool]:
        with pypsrp_client(
            endpoint, https=True, auth=auth, cert_validation=str(ca.ca_file)
        ) as client:
            output, _streams, had_errors = client.execute_ps("Get-Thing")
            return output, had_errors

    assert await asyncio.to_thread(run) == ('{"cmscan-probe/1": true}', False)
    assert host.calls == [("Get-Thing", {})]


async def test_https_wrong_password_is_an_authentication_error(
    endpoint: WinRMEndpoint, ca: FleetCA
) -> None:
    def run() -> None:
        with pypsrp_client(
            endpoint, https=True, auth="basic", password="nope", cert_validation=str(ca.ca_file)
        ) as client:
            client.execute_ps("1")

    with pytest.raises(AuthenticationError):
        await asyncio.to_thread(run)
