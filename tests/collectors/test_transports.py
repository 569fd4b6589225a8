"""The transport registry and the collectors built from settings, and the SSH pin store."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors import REGISTRY, CollectorOptions
from collectors.ssh import PinnedKey, SSHCollector, SSHConfig
from collectors.winrm import WinRMCollector, WinRMConfig
from config.settings import Settings
from engine.transports import TransportError, build_collectors
from inventory.spec import DEFAULT_PORTS
from store.db import Database
from store.host_keys import DatabaseHostKeys, forget_host_key, get_host_key

KEY_A = PinnedKey("ssh-ed25519", "SHA256:aaaa", "ssh-ed25519 AAAAa")
KEY_B = PinnedKey("ssh-ed25519", "SHA256:bbbb", "ssh-ed25519 AAAAb")


def test_registry_covers_every_inventory_transport() -> None:
    assert set(REGISTRY) == set(DEFAULT_PORTS)


def test_registry_builds_each_collector() -> None:
    options = CollectorOptions()
    built = {name: make(options) for name, make in REGISTRY.items()}
    assert {name: collector.name for name, collector in built.items()} == {
        "winrm": "winrm",
        "winrm-https": "winrm-https",
        "ssh": "ssh",
    }
    assert isinstance(built["winrm"], WinRMCollector)
    assert not built["winrm"].config.https
    assert isinstance(built["winrm-https"], WinRMCollector)
    assert built["winrm-https"].config.https


def test_settings_reach_the_collectors(tmp_path: Path) -> None:
    settings = Settings(
        winrm={"ca_file": tmp_path / "ca.pem", "max_threads": 8},  # type: ignore[arg-type]
        ssh={"known_hosts": tmp_path / "known_hosts"},  # type: ignore[arg-type]
    )
    collectors = build_collectors(settings)
    https = collectors["winrm-https"]
    assert isinstance(https, WinRMCollector)
    assert https.config == WinRMConfig(https=True, ca_file=tmp_path / "ca.pem", max_threads=8)
    ssh = collectors["ssh"]
    assert isinstance(ssh, SSHCollector)
    assert ssh.config == SSHConfig(known_hosts=tmp_path / "known_hosts")


def test_only_the_named_transports_are_built() -> None:
    assert list(build_collectors(Settings(), names=["ssh", "ssh"])) == ["ssh"]


def test_unknown_transport_is_refused() -> None:
    with pytest.raises(TransportError, match="unknown transport telnet; use one of winrm"):
        build_collectors(Settings(), names=["telnet"])


def test_tofu_needs_the_database() -> None:
    settings = Settings(ssh={"host_key_policy": "tofu"})  # type: ignore[arg-type]
    with pytest.raises(TransportError, match="needs the database"):
        build_collectors(settings, names=["ssh"])
    assert list(build_collectors(settings, names=["winrm"])) == ["winrm"]


def test_known_hosts_policy_needs_a_file() -> None:
    settings = Settings(ssh={"known_hosts": None})  # type: ignore[arg-type]
    with pytest.raises(TransportError, match=r"needs ssh\.known_hosts"):
        build_collectors(settings)


async def test_pins_are_kept_per_host_and_port_and_never_replaced(database: Database) -> None:
    store = DatabaseHostKeys(database)
    assert await store.get("WS01.example.nhs.uk", 22) is None
    assert await store.pin("WS01.example.nhs.uk", 22, KEY_A) == KEY_A
    # A second scanner meeting the host with another key gets the first pin back.
    assert await store.pin("ws01.example.nhs.uk.", 22, KEY_B) == KEY_A
    assert await store.get("ws01.example.nhs.uk", 22) == KEY_A
    assert await store.get("ws01.example.nhs.uk", 2222) is None
    assert await store.pin("ws01.example.nhs.uk", 2222, KEY_B) == KEY_B
    async with database.write() as session:
        assert await forget_host_key(session, host="ws01.example.nhs.uk", port=22)
        assert not await forget_host_key(session, host="ws01.example.nhs.uk", port=22)
    async with database.read() as session:
        assert await get_host_key(session, host="ws01.example.nhs.uk", port=22) is None
