"""The fleet CA and HTTPS: lazily issued certificates that verify against ca.pem only."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import pytest
import requests
from cryptography import x509

from simulator.tls import FleetCA
from simulator.winrm import WinRMEndpoint, start_winrm
from tests.simulator_winrm.clients import pypsrp_client, pywinrm_session
from tests.simulator_winrm.hosts import ACCOUNT, ScriptedHost


def test_ca_file_holds_only_the_certificate(ca: FleetCA) -> None:
    pem = ca.ca_file.read_bytes()

    assert ca.ca_file.name == "ca.pem"
    assert b"PRIVATE KEY" not in pem
    certificate = x509.load_pem_x509_certificate(pem)
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_host_certificate_names_the_host_and_its_address(ca: FleetCA) -> None:
    issued = ca.host_certificate("pc-0042.a81001.nhs.uk", "127.8.0.42")
    certificate = x509.load_der_x509_certificate(issued.certificate_der)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    assert names.get_values_for_type(x509.DNSName) == ["pc-0042.a81001.nhs.uk"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.8.0.42"]
    assert ca.server_context("pc-0042.a81001.nhs.uk", "127.8.0.42") is issued.context
    assert ca.issued == 1


async def test_certificates_are_issued_on_first_https_connection(
    host: ScriptedHost, address: str, ca: FleetCA
) -> None:
    endpoint = await start_winrm(
        host, address=address, account=ACCOUNT, http_port=0, https_port=0, ca=ca
    )
    try:
        assert ca.issued == 0
        await asyncio.to_thread(_handshake, endpoint, ca, host.hostname)
        await asyncio.to_thread(_handshake, endpoint, ca, host.hostname)
        assert ca.issued == 1
    finally:
        await endpoint.close()


async def test_hostname_is_checked(endpoint: WinRMEndpoint, ca: FleetCA) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        await asyncio.to_thread(_handshake, endpoint, ca, "pc-9999.a81001.nhs.uk")


async def test_certificate_from_another_ca_is_refused(
    endpoint: WinRMEndpoint, host: ScriptedHost, tmp_path: Path
) -> None:
    stranger = FleetCA.create(tmp_path / "stranger")

    def pypsrp_run() -> None:
        with pypsrp_client(endpoint, https=True, cert_validation=str(stranger.ca_file)) as c:
            c.execute_ps("1")

    def pywinrm_run() -> None:
        session = pywinrm_session(endpoint, https=True, ca_trust_path=str(stranger.ca_file))
        session.run_ps("1")

    for run in (pypsrp_run, pywinrm_run):
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            await asyncio.to_thread(run)
    assert host.calls == []


async def test_https_needs_a_ca(host: ScriptedHost, address: str) -> None:
    with pytest.raises(ValueError, match="needs a FleetCA"):
        await start_winrm(host, address=address, account=ACCOUNT, http_port=0, https_port=0)


def _handshake(endpoint: WinRMEndpoint, ca: FleetCA, hostname: str) -> None:
    context = ssl.create_default_context(cafile=str(ca.ca_file))
    assert endpoint.https_port is not None
    with (
        socket.create_connection((endpoint.address, endpoint.https_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=hostname),
    ):
        pass
