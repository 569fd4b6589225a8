"""Every fault a simulated host can have, as an unmodified client sees it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import requests
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.shell import Process, WinRS
from winrm.exceptions import WSManFaultError as PywinrmFaultError

from simulator import shells
from simulator.behaviour import Fault, PowerShellError, Timing
from simulator.tls import FleetCA
from simulator.winrm import MAX_SHELLS_PER_USER, WinRMEndpoint, start_winrm
from tests.simulator_winrm.clients import pypsrp_client, pywinrm_session
from tests.simulator_winrm.hosts import ACCOUNT, ScriptedHost

QUOTA_MESSAGE = (
    "The WS-Management service cannot process the request. This user is allowed a maximum "
    "number of 30 concurrent shells, which has been exceeded. Close existing shells or raise "
    "the quota for this user."
)
# Short client timeouts keep the hanging cases quick.
IMPATIENT: dict[str, Any] = {"connection_timeout": 1, "read_timeout": 1}


def _execute_ps(endpoint: WinRMEndpoint, **options: Any) -> str:
    with pypsrp_client(endpoint, **options) as client:
        return client.execute_ps("Get-Thing")[0]


@pytest.mark.parametrize("https", [False, True])
async def test_black_hole_accepts_but_never_answers(
    endpoint: WinRMEndpoint, host: ScriptedHost, ca: FleetCA, https: bool
) -> None:
    host.fault = Fault.BLACK_HOLE
    options = {"https": https, "cert_validation": str(ca.ca_file), **IMPATIENT}

    with pytest.raises(requests.exceptions.ReadTimeout):
        await asyncio.to_thread(_execute_ps, endpoint, **options)
    assert host.calls == []


async def test_black_hole_can_start_on_an_open_connection(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    def run() -> None:
        with pypsrp_client(endpoint, **IMPATIENT) as client:
            pool = RunspacePool(client.wsman)
            pool.open()
            host.fault = Fault.BLACK_HOLE  # the host stops answering mid-conversation
            PowerShell(pool).add_script("1").invoke()

    with pytest.raises(requests.exceptions.ReadTimeout):
        await asyncio.to_thread(run)


@pytest.mark.parametrize(
    ("https", "auth"), [(False, "ntlm"), (False, "negotiate"), (True, "basic")]
)
async def test_bad_credentials_rejects_even_the_right_password(
    endpoint: WinRMEndpoint, host: ScriptedHost, ca: FleetCA, https: bool, auth: str
) -> None:
    host.fault = Fault.BAD_CREDENTIALS

    with pytest.raises(AuthenticationError, match="Failed to authenticate the user"):
        await asyncio.to_thread(
            _execute_ps, endpoint, https=https, auth=auth, cert_validation=str(ca.ca_file)
        )
    assert host.calls == []


async def test_bad_credentials_applies_to_an_authenticated_connection(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    def run() -> None:
        with pypsrp_client(endpoint) as client:
            pool = RunspacePool(client.wsman)
            pool.open()
            host.fault = Fault.BAD_CREDENTIALS  # e.g. the account was just locked out
            PowerShell(pool).add_script("1").invoke()

    with pytest.raises(AuthenticationError):
        await asyncio.to_thread(run)


async def test_quota_exceeded_is_the_windows_fault(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    host.fault = Fault.QUOTA_EXCEEDED

    with pytest.raises(WSManFaultError) as caught:
        await asyncio.to_thread(_execute_ps, endpoint)
    assert caught.value.code == 2150859173
    assert caught.value.machine == host.hostname
    assert caught.value.reason == QUOTA_MESSAGE

    session = pywinrm_session(endpoint)
    with pytest.raises(PywinrmFaultError) as pywinrm_caught:
        await asyncio.to_thread(session.run_cmd, "hostname")
    assert pywinrm_caught.value.code == 500
    assert pywinrm_caught.value.wsman_fault_code == 2150859173
    assert pywinrm_caught.value.fault_subcode == "w:QuotaLimit"


async def test_leaked_shells_run_into_max_shells_per_user(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    def run() -> tuple[int, WSManFaultError]:
        with pypsrp_client(endpoint) as client:
            leaked = []
            for _ in range(MAX_SHELLS_PER_USER):
                pool = RunspacePool(client.wsman)
                pool.open()  # and never closed: a leaking client
                leaked.append(pool)
            opened = endpoint.open_shells
            with pytest.raises(WSManFaultError) as caught:
                RunspacePool(client.wsman).open()
            for pool in leaked:
                pool.close()
            client.execute_ps("1")  # room again
            return opened, caught.value

    opened, fault = await asyncio.to_thread(run)

    assert opened == MAX_SHELLS_PER_USER
    assert (fault.code, fault.reason) == (2150859173, QUOTA_MESSAGE)
    assert endpoint.open_shells == 0


async def test_idle_shells_expire_as_windows_expires_them(
    endpoint: WinRMEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leaked shell lives only for its IdleTimeOut (clamped lower here to keep tests fast)."""
    monkeypatch.setattr(shells, "SHORTEST_IDLE_TIMEOUT", 0.2)
    with pypsrp_client(endpoint) as client:
        pool = RunspacePool(client.wsman, idle_timeout=0)
        await asyncio.to_thread(pool.open)
        assert endpoint.open_shells == 1

        async with asyncio.timeout(10):
            while endpoint.open_shells:  # noqa: ASYNC110 - watched from outside, as a user would
                await asyncio.sleep(0.05)

        with pytest.raises(WSManFaultError) as caught:
            await asyncio.to_thread(PowerShell(pool).add_script("1").invoke)
        assert caught.value.code == 2150858843  # the shell was not found


@pytest.mark.parametrize("https", [False, True])
async def test_reset_breaks_the_connection_mid_response(
    endpoint: WinRMEndpoint, host: ScriptedHost, ca: FleetCA, https: bool
) -> None:
    host.fault = Fault.RESET

    with pytest.raises(requests.exceptions.ChunkedEncodingError) as caught:
        await asyncio.to_thread(_execute_ps, endpoint, https=https, cert_validation=str(ca.ca_file))
    # The head and part of the body arrived; then the connection was reset or cut.
    assert "Connection broken" in str(caught.value)


async def test_slow_host_makes_receive_time_out_until_the_script_ends(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    host.delays = Timing(round_trip=0.01, runspace_open=0.1, script_run=1.2)
    host.output = "finally"

    def run() -> tuple[int | None, str]:
        with pypsrp_client(endpoint, operation_timeout=1) as client:
            with WinRS(client.wsman) as shell:
                process = Process(shell, "hostname")
                process.begin_invoke()
                try:
                    shell.receive("stdout stderr", process.id, timeout=1)
                except WSManFaultError as exc:
                    timed_out = exc.code
                else:
                    timed_out = None
                process.end_invoke()
                process.signal(
                    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
                )
            # pypsrp treats w:TimedOut as "no output yet" and polls again.
            output = client.execute_ps("Get-Thing")[0]
            return timed_out, output

    timed_out, output = await asyncio.to_thread(run)

    assert timed_out == 2150858793  # ERROR_WSMAN_OPERATION_TIMEDOUT
    assert output == "finally"


async def test_malformed_output_is_delivered_as_is(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    host.fault = Fault.MALFORMED_OUTPUT
    host.output = '{"schema": 1, "products": [{"name": "NHS Credential Manag'

    output = await asyncio.to_thread(_probe_output, endpoint)

    assert output == [host.output]


async def test_oversized_output_arrives_whole_in_envelope_sized_pieces(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    host.fault = Fault.OVERSIZED_OUTPUT
    host.output = json.dumps({"padding": "\u00e9x" * 1_500_000})  # about 4.5 MB of UTF-8
    sizes: list[int] = []

    output = await asyncio.to_thread(_probe_output, endpoint, sizes)

    assert output == [host.output]
    assert len(sizes) > 5  # many Receive responses...
    assert max(sizes) <= 512_000 + 1024  # ...each within pypsrp's MaxEnvelopeSize


async def test_probe_exception_fails_the_pipeline(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    host.fault = Fault.PROBE_EXCEPTION
    host.output = ""
    host.error = PowerShellError(
        "Access to the registry key is denied.", category="PermissionDenied"
    )

    def run() -> tuple[bool, list[str]]:
        with pypsrp_client(endpoint) as client, RunspacePool(client.wsman) as pool:
            shell = PowerShell(pool).add_script("probe")
            shell.invoke()
            return shell.had_errors, [str(e) for e in shell.streams.error]

    assert await asyncio.to_thread(run) == (True, ["Access to the registry key is denied."])


async def test_powered_off_host_refuses_then_comes_back_on_the_same_ports(
    host: ScriptedHost, address: str, ca: FleetCA
) -> None:
    first = await start_winrm(
        host, address=address, account=ACCOUNT, http_port=0, https_port=0, ca=ca
    )
    http_port, https_port = first.http_port, first.https_port
    assert await asyncio.to_thread(_execute_ps, first) == host.output
    await first.close()

    with pytest.raises(requests.exceptions.ConnectionError, match="refused"):
        await asyncio.to_thread(_execute_ps, first)

    again = await start_winrm(
        host, address=address, account=ACCOUNT, http_port=http_port, https_port=https_port, ca=ca
    )
    try:
        assert await asyncio.to_thread(_execute_ps, again) == host.output
        host.fault = Fault.POWERED_OFF  # switched off under a running endpoint: resets
        with pytest.raises(requests.exceptions.ConnectionError):
            await asyncio.to_thread(_execute_ps, again)
    finally:
        await again.close()


def _probe_output(endpoint: WinRMEndpoint, sizes: list[int] | None = None) -> list[Any]:
    with pypsrp_client(endpoint) as client:
        if sizes is not None:
            session = client.wsman.transport._build_session()
            session.hooks["response"].append(lambda r, **_: sizes.append(len(r.content)))
            client.wsman.transport.session = session
        with RunspacePool(client.wsman) as pool:
            shell = PowerShell(pool)
            shell.add_script("probe").add_parameter("Patterns", ["NHS *"])
            return list(shell.invoke())
