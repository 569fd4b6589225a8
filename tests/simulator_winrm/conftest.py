"""Fixtures: a scripted simulated host, a fleet CA, and a WinRM endpoint on a random loopback."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulator.tls import FleetCA
from simulator.winrm import Account, WinRMEndpoint, start_winrm
from tests.simulator_winrm.hosts import ACCOUNT, ScriptedHost


@pytest.fixture
def address() -> str:
    """A loopback address of its own, so parallel runs by others never share a port space."""
    rng = random.SystemRandom()
    return f"127.{rng.randint(64, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


@pytest.fixture
def host() -> ScriptedHost:
    return ScriptedHost()


@pytest.fixture
def ca(tmp_path: Path) -> FleetCA:
    return FleetCA.create(tmp_path / "ca")


@pytest.fixture
async def endpoint(host: ScriptedHost, address: str, ca: FleetCA) -> AsyncIterator[WinRMEndpoint]:
    endpoint = await start_winrm(
        host, address=address, account=ACCOUNT, http_port=0, https_port=0, ca=ca
    )
    try:
        yield endpoint
    finally:
        await endpoint.close()


@pytest.fixture
def account() -> Account:
    return ACCOUNT
