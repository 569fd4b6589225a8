"""Malformed, hostile and oversized requests get Windows' answers and never stop the endpoint."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import pytest
import requests
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import RunspacePool
from pypsrp.wsman import WSMan

from simulator.tls import FleetCA
from simulator.winrm import WinRMEndpoint
from tests.simulator_winrm.clients import pypsrp_client
from tests.simulator_winrm.hosts import ACCOUNT, ScriptedHost

SOAP = "application/soap+xml;charset=UTF-8"
ENCRYPTED = (
    'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";'
    'boundary="Encrypted Boundary"'
)
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&lol3;</s:Body>'
    "</s:Envelope>"
)


def _post(endpoint: WinRMEndpoint, ca: FleetCA, body: bytes, **options: Any) -> requests.Response:
    """POST over HTTPS with Basic, where a clear-text envelope is allowed."""
    url = f"https://{endpoint.address}:{endpoint.https_port}/wsman"
    headers = {"Content-Type": SOAP, **options.pop("headers", {})}
    with requests.Session() as session:
        session.trust_env = False
        return session.post(
            url,
            data=body,
            headers=headers,
            auth=(ACCOUNT.username, ACCOUNT.password),
            verify=str(ca.ca_file),
            timeout=10,
            **options,
        )


def _envelope(action: str, resource: str, body: str, *, shell_id: str | None = None) -> bytes:
    selectors = (
        f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
        if shell_id
        else ""
    )
    return (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
        'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">'
        f"<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        f"<w:ResourceURI>{resource}</w:ResourceURI><w:OperationTimeout>PT5S</w:OperationTimeout>"
        f"{selectors}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _fault(response: requests.Response) -> WSManFaultError:
    assert response.status_code == 500
    assert response.headers["Content-Type"] == SOAP
    fault: WSManFaultError = WSMan._parse_wsman_fault(response.text)
    return fault


@pytest.mark.parametrize(
    "body",
    [
        b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Header>",
        BILLION_LAUGHS.encode(),
        b"\x00\xff not xml at all",
        b"<Envelope/>",
        b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body/></s:Envelope>",
    ],
    ids=["truncated", "entity-expansion", "binary", "not-soap", "no-header"],
)
async def test_malformed_envelopes_get_a_soap_fault(
    endpoint: WinRMEndpoint, ca: FleetCA, host: ScriptedHost, body: bytes
) -> None:
    response = await asyncio.to_thread(_post, endpoint, ca, body)

    fault = _fault(response)
    assert fault.code == 2150858819  # ERROR_WSMAN_INVALID_XML
    assert fault.machine == host.hostname
    # ...and the endpoint carries on serving.
    assert await asyncio.to_thread(_execute_ps, endpoint) == host.output


async def test_unknown_shell_is_the_windows_fault(endpoint: WinRMEndpoint, ca: FleetCA) -> None:
    body = _envelope(
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive",
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd",
        "<rsp:Receive><rsp:DesiredStream>stdout</rsp:DesiredStream></rsp:Receive>",
        shell_id="0A6E3C2B-0000-4000-8000-000000000000",
    )

    fault = _fault(await asyncio.to_thread(_post, endpoint, ca, body))

    assert fault.code == 2150858843
    assert fault.reason is not None
    assert (
        "ShellId 0A6E3C2B-0000-4000-8000-000000000000 failed because the shell was not found"
        in fault.reason
    )


async def test_hostile_powershell_creation_data_is_refused(
    endpoint: WinRMEndpoint, ca: FleetCA
) -> None:
    creation = "AAAAAAAAAAEAAAAAAAAAAAMAAAAA/w=="  # a fragment claiming 255 bytes it lacks
    body = _envelope(
        "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create",
        "http://schemas.microsoft.com/powershell/Microsoft.PowerShell",
        "<rsp:Shell><rsp:InputStreams>stdin pr</rsp:InputStreams>"
        f'<creationXml xmlns="http://schemas.microsoft.com/powershell">{creation}</creationXml>'
        "</rsp:Shell>",
    )

    fault = _fault(await asyncio.to_thread(_post, endpoint, ca, body))

    assert fault.code == 2150858810
    assert endpoint.open_shells == 0


async def test_other_session_configurations_do_not_exist(endpoint: WinRMEndpoint) -> None:
    def run() -> None:
        with pypsrp_client(endpoint) as client:
            RunspacePool(client.wsman, configuration_name="Microsoft.Exchange").open()

    with pytest.raises(WSManFaultError) as caught:
        await asyncio.to_thread(run)
    assert caught.value.code == 2150858811


async def test_garbage_encrypted_body_is_refused(endpoint: WinRMEndpoint) -> None:
    def run() -> int:
        with pypsrp_client(endpoint) as client:
            client.execute_ps("1")  # leaves an authenticated, encrypting connection behind
            session = client.wsman.transport.session
            assert session is not None
            response = session.post(
                client.wsman.transport.endpoint,
                data=b"--Encrypted Boundary\r\n\tContent-Type: nonsense\r\n"
                b"--Encrypted Boundary--\r\n",
                headers={"Content-Type": ENCRYPTED},
                timeout=10,
            )
            return response.status_code

    assert await asyncio.to_thread(run) == 400


async def test_oversized_requests_are_refused_before_buffering(
    endpoint: WinRMEndpoint, ca: FleetCA
) -> None:
    response = await asyncio.to_thread(_post, endpoint, ca, b"x" * (3 * 1024 * 1024))

    assert response.status_code == 413


async def test_raw_garbage_does_not_disturb_the_endpoint_or_its_neighbours(
    endpoint: WinRMEndpoint, host: ScriptedHost
) -> None:
    def send_garbage() -> bytes:
        assert endpoint.http_port is not None
        with socket.create_connection((endpoint.address, endpoint.http_port), timeout=5) as sock:
            sock.sendall(b"\x16\x03\x01\x02\x00garbage that is not HTTP\r\n\r\n")
            return sock.recv(4096)

    reply = await asyncio.to_thread(send_garbage)

    assert reply.startswith(b"HTTP/1.1 400")
    assert await asyncio.to_thread(_execute_ps, endpoint) == host.output


async def test_http_details_match_windows(endpoint: WinRMEndpoint, ca: FleetCA) -> None:
    def run() -> dict[str, requests.Response]:
        with requests.Session() as session:
            session.trust_env = False
            http = f"http://{endpoint.address}:{endpoint.http_port}"
            https = f"https://{endpoint.address}:{endpoint.https_port}"
            return {
                "http": session.post(f"{http}/wsman", timeout=5),
                "https": session.post(f"{https}/wsman", verify=str(ca.ca_file), timeout=5),
                "get": session.get(f"{http}/wsman", timeout=5),
                "elsewhere": session.post(f"{http}/other", timeout=5),
            }

    responses = await asyncio.to_thread(run)

    for response in responses.values():
        assert response.headers["Server"] == "Microsoft-HTTPAPI/2.0"
    assert responses["http"].status_code == 401
    assert responses["http"].headers["WWW-Authenticate"] == "Negotiate, NTLM"
    assert responses["https"].status_code == 401
    assert responses["https"].headers["WWW-Authenticate"] == 'Negotiate, NTLM, Basic realm="WSMAN"'
    assert responses["get"].status_code == 405
    assert responses["elsewhere"].status_code == 404


async def test_many_concurrent_clients(endpoint: WinRMEndpoint, host: ScriptedHost) -> None:
    results = await asyncio.gather(
        *(
            asyncio.to_thread(_execute_ps, endpoint, auth=auth)
            for auth in ["ntlm", "negotiate"] * 12
        )
    )

    assert results == [host.output] * 24
    assert endpoint.open_shells == 0


def _execute_ps(endpoint: WinRMEndpoint, **options: Any) -> str:
    with pypsrp_client(endpoint, **options) as client:
        return client.execute_ps("Get-Thing")[0]
