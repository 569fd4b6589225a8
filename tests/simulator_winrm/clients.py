"""The third-party clients under test, configured the way a user would configure them."""

from __future__ import annotations

from typing import Any

import winrm
from pypsrp.client import Client

from simulator.winrm import WinRMEndpoint
from tests.simulator_winrm.hosts import ACCOUNT


def pypsrp_client(endpoint: WinRMEndpoint, *, https: bool = False, **options: Any) -> Client:
    """A pypsrp Client for the endpoint: HTTP (message encryption) unless `https`."""
    settings: dict[str, Any] = {
        "port": endpoint.https_port if https else endpoint.http_port,
        "ssl": https,
        "username": ACCOUNT.username,
        "password": ACCOUNT.password,
        "auth": "ntlm",
        "connection_timeout": 5,
        "read_timeout": 30,
        "no_proxy": True,
    }
    settings.update(options)
    return Client(endpoint.address, **settings)


def pywinrm_session(
    endpoint: WinRMEndpoint, *, https: bool = False, **options: Any
) -> winrm.Session:
    """A pywinrm Session for the endpoint (NTLM, message encryption over HTTP)."""
    scheme, port = ("https", endpoint.https_port) if https else ("http", endpoint.http_port)
    # Explicit proxy and CA settings: pywinrm otherwise reads them from the environment.
    settings: dict[str, Any] = {"transport": "ntlm", "proxy": None, "ca_trust_path": None}
    settings.update(options)
    auth = settings.pop("auth", (ACCOUNT.username, ACCOUNT.password))
    return winrm.Session(f"{scheme}://{endpoint.address}:{port}/wsman", auth=auth, **settings)
