"""The SSH collector against a real OpenSSH server running a powershell.exe stand-in."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncssh
import pytest

from collectors.base import Outcome, Target, Timeouts
from collectors.credentials import Credentials, Secret
from collectors.probe import probe_script
from collectors.ssh import PinnedKey, SSHCollector, SSHConfig
from store.db import Database
from store.host_keys import DatabaseHostKeys
from tests.collectors.hosts import PROBE_FAILURE, WATCHED, scripted
from tests.collectors.sshd import (
    PasswordSSHServer,
    SSHServer,
    running_password_sshd,
    running_sshd,
    write_private_key,
)
from tests.support import free_port

pytestmark = pytest.mark.integration

FAST = Timeouts(connect=5, operation=10, total=15)


class MemoryHostKeys:
    """A HostKeyStore in a dict, for tests of the collector alone."""

    def __init__(self) -> None:
        self.pins: dict[tuple[str, int], PinnedKey] = {}

    async def get(self, host: str, port: int) -> PinnedKey | None:
        return self.pins.get((host, port))

    async def pin(self, host: str, port: int, key: PinnedKey) -> PinnedKey:
        return self.pins.setdefault((host, port), key)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def target(
    server: SSHServer,
    hostname: str = "127.0.0.1",
    *,
    address: str | None = None,
    patterns: tuple[str, ...] = WATCHED,
) -> Target:
    return Target(hostname, server.port, "ssh", address=address, patterns=patterns)


def key_credentials(server: SSHServer, key_file: Path | None = None, **kw: object) -> Credentials:
    return Credentials(
        profile="fleet",
        username=server.user,
        auth="negotiate",
        ssh_key_file=key_file or server.client_key_file,
        **kw,  # type: ignore[arg-type]
    )


def known_hosts(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text("".join(lines))
    return path


async def test_key_auth_with_known_hosts_gives_facts(sshd: SSHServer, tmp_path: Path) -> None:
    config = SSHConfig(known_hosts=known_hosts(tmp_path, sshd.known_hosts_line()))
    collector = SSHCollector(config)
    await collector.open()
    result = await collector.collect(target(sshd), key_credentials(sshd), FAST)
    await collector.aclose()
    assert result.outcome is Outcome.OK, result.reason
    assert result.facts is not None
    assert result.facts.probe.patterns == WATCHED
    assert [p.name for p in result.facts.products] == [
        "NHS Credential Management",
        "Oberthur Technologies Authentic Web Pack",
    ]
    assert result.details["host_key"] == sshd.fingerprint
    assert result.transport == "ssh"


@pytest.fixture(scope="module")
def password_sshd() -> Iterator[PasswordSSHServer]:
    answer = scripted(probe_script(), {"Patterns": list(WATCHED)}, None).output
    with running_password_sshd(answer) as server:
        yield server


def password_credentials(server: PasswordSSHServer, password: str) -> Credentials:
    return Credentials(
        profile="fleet", username=server.user, auth="negotiate", password=Secret(password)
    )


async def test_password_auth_gives_facts(password_sshd: PasswordSSHServer, tmp_path: Path) -> None:
    path = known_hosts(tmp_path, password_sshd.known_hosts_line())
    collector = SSHCollector(SSHConfig(known_hosts=path))
    target_host = Target("127.0.0.1", password_sshd.port, "ssh", patterns=WATCHED)
    credentials = password_credentials(password_sshd, password_sshd.password)
    result = await collector.collect(target_host, credentials, FAST)
    assert result.outcome is Outcome.OK, result.reason
    assert result.facts is not None


async def test_wrong_password_is_auth_failed(
    password_sshd: PasswordSSHServer, tmp_path: Path
) -> None:
    path = known_hosts(tmp_path, password_sshd.known_hosts_line())
    collector = SSHCollector(SSHConfig(known_hosts=path))
    target_host = Target("127.0.0.1", password_sshd.port, "ssh", patterns=WATCHED)
    credentials = password_credentials(password_sshd, password_sshd.password + "x")
    result = await collector.collect(target_host, credentials, FAST)
    assert result.outcome is Outcome.AUTH_FAILED
    assert password_sshd.password not in result.reason


async def test_patterns_are_passed_to_the_probe(sshd: SSHServer, tmp_path: Path) -> None:
    collector = SSHCollector(SSHConfig(known_hosts=known_hosts(tmp_path, sshd.known_hosts_line())))
    only_cm = target(sshd, patterns=("nhs credential*",))
    result = await collector.collect(only_cm, key_credentials(sshd), FAST)
    assert result.facts is not None, result.reason
    assert [p.name for p in result.facts.products] == ["NHS Credential Management"]


async def test_known_hosts_matches_the_inventory_name_when_an_address_is_dialled(
    sshd: SSHServer, tmp_path: Path
) -> None:
    path = known_hosts(tmp_path, sshd.known_hosts_line("ws01.example.nhs.uk"))
    collector = SSHCollector(SSHConfig(known_hosts=path))
    named = target(sshd, hostname="ws01.example.nhs.uk", address="127.0.0.1")
    result = await collector.collect(named, key_credentials(sshd), FAST)
    assert result.outcome is Outcome.OK, result.reason


async def test_host_missing_from_known_hosts_is_refused(sshd: SSHServer, tmp_path: Path) -> None:
    other = sshd.known_hosts_line("ws99.example.nhs.uk")
    collector = SSHCollector(SSHConfig(known_hosts=known_hosts(tmp_path, other)))
    result = await collector.collect(target(sshd), key_credentials(sshd), FAST)
    assert result.outcome is Outcome.PROTOCOL_ERROR
    assert sshd.fingerprint in result.reason
    assert "does not match known_hosts" in result.reason


async def test_changed_host_key_is_refused_against_known_hosts(
    sshd: SSHServer, tmp_path: Path
) -> None:
    impostor = asyncssh.generate_private_key("ssh-ed25519")
    path = known_hosts(tmp_path, sshd.known_hosts_line(key=impostor))
    collector = SSHCollector(SSHConfig(known_hosts=path))
    result = await collector.collect(target(sshd), key_credentials(sshd), FAST)
    assert result.outcome is Outcome.PROTOCOL_ERROR
    assert sshd.fingerprint in result.reason


async def test_missing_known_hosts_file_is_a_clear_error(sshd: SSHServer, tmp_path: Path) -> None:
    collector = SSHCollector(SSHConfig(known_hosts=tmp_path / "nowhere"))
    result = await collector.collect(target(sshd), key_credentials(sshd), FAST)
    assert result.outcome is Outcome.PROTOCOL_ERROR
    assert "cannot read known_hosts" in result.reason
    assert str(tmp_path / "nowhere") in result.reason


async def test_known_hosts_is_reread_when_it_changes(sshd: SSHServer, tmp_path: Path) -> None:
    path = known_hosts(tmp_path)
    collector = SSHCollector(SSHConfig(known_hosts=path))
    await collector.open()
    first = await collector.collect(target(sshd), key_credentials(sshd), FAST)
    assert first.outcome is Outcome.PROTOCOL_ERROR
    path.write_text(sshd.known_hosts_line())
    second = await collector.collect(target(sshd), key_credentials(sshd), FAST)
    assert second.outcome is Outcome.OK, second.reason


async def test_unauthorised_key_is_auth_failed(sshd: SSHServer, tmp_path: Path) -> None:
    stranger = write_private_key(asyncssh.generate_private_key("ssh-ed25519"), tmp_path / "k")
    collector = SSHCollector(SSHConfig(known_hosts=known_hosts(tmp_path, sshd.known_hosts_line())))
    result = await collector.collect(target(sshd), key_credentials(sshd, stranger), FAST)
    assert result.outcome is Outcome.AUTH_FAILED
    assert "'fleet'" in result.reason


async def test_encrypted_key_with_its_passphrase(sshd: SSHServer, tmp_path: Path) -> None:
    key = asyncssh.read_private_key(sshd.client_key_file)
    locked = write_private_key(key, tmp_path / "locked", passphrase="open sesame")
    collector = SSHCollector(SSHConfig(known_hosts=known_hosts(tmp_path, sshd.known_hosts_line())))
    good = key_credentials(sshd, locked, ssh_key_passphrase=Secret("open sesame"))
    assert (await collector.collect(target(sshd), good, FAST)).outcome is Outcome.OK
    bad = key_credentials(sshd, locked, ssh_key_passphrase=Secret("wrong horse"))
    result = await collector.collect(target(sshd), bad, FAST)
    assert result.outcome is Outcome.AUTH_FAILED
    assert "wrong passphrase" in result.reason
    assert "wrong horse" not in result.reason


async def test_tofu_pins_first_key_then_refuses_a_changed_one(tmp_path: Path) -> None:
    store = MemoryHostKeys()
    collector = SSHCollector(SSHConfig(host_key_policy="tofu", known_hosts=None), host_keys=store)
    with running_sshd(tmp_path / "first") as first:
        host = target(first, hostname="ws01.example.nhs.uk", address="127.0.0.1")
        result = await collector.collect(host, key_credentials(first), FAST)
        assert result.outcome is Outcome.OK, result.reason
        assert store.pins[("ws01.example.nhs.uk", first.port)].fingerprint == first.fingerprint
        again = await collector.collect(host, key_credentials(first), FAST)
        assert again.outcome is Outcome.OK, again.reason
        old = first.fingerprint
    # The "host" is rebuilt: same name and port, new host key.
    with running_sshd(tmp_path / "second", port=first.port) as second:
        result = await collector.collect(host, key_credentials(second), FAST)
    assert result.outcome is Outcome.PROTOCOL_ERROR
    assert old in result.reason
    assert second.fingerprint in result.reason
    assert "changed" in result.reason
    assert f"cmscan inventory forget-host-key ws01.example.nhs.uk --port {first.port}" in (
        result.reason
    )
    # The pin is never replaced silently.
    assert store.pins[("ws01.example.nhs.uk", first.port)].fingerprint == old


async def test_tofu_pins_in_the_database(sshd: SSHServer, database: Database) -> None:
    store = DatabaseHostKeys(database)
    collector = SSHCollector(SSHConfig(host_key_policy="tofu"), host_keys=store)
    host = target(sshd, hostname="WS02.example.nhs.uk", address="127.0.0.1")
    result = await collector.collect(host, key_credentials(sshd), FAST)
    assert result.outcome is Outcome.OK, result.reason
    pinned = await store.get("ws02.example.nhs.uk", sshd.port)
    assert pinned is not None
    assert pinned.fingerprint == sshd.fingerprint
    assert pinned.key_type == "ssh-ed25519"
    assert (await collector.collect(host, key_credentials(sshd), FAST)).outcome is Outcome.OK

    # After a rebuild the engineer forgets the pin; the next scan pins afresh.
    def forget() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scanner", "inventory", "forget-host-key",
             "ws02.example.nhs.uk", "--port", str(sshd.port), "--db", str(database.url)],
            capture_output=True, text=True, timeout=60, check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("CMSCAN_")},
        )  # fmt: skip

    forgotten = await asyncio.to_thread(forget)
    assert forgotten.returncode == 0, forgotten.stderr
    assert "Forgot the host key pinned for ws02.example.nhs.uk" in forgotten.stdout
    assert await store.get("ws02.example.nhs.uk", sshd.port) is None
    again = await asyncio.to_thread(forget)
    assert again.returncode == 1
    assert "no host key is pinned" in again.stderr


@pytest.fixture(scope="module")
def faulty_sshd(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[SSHServer]:
    with running_sshd(tmp_path_factory.mktemp("sshd"), mode=request.param) as server:
        yield server


@pytest.mark.parametrize(
    ("faulty_sshd", "expected"),
    [
        ("malformed-output", "malformed JSON"),
        ("oversized-output", "exceeds the 262144 byte limit"),
        ("probe-exception", PROBE_FAILURE),
    ],
    indirect=["faulty_sshd"],
)
async def test_bad_probe_output_is_a_probe_error(
    faulty_sshd: SSHServer, expected: str, tmp_path: Path
) -> None:
    path = known_hosts(tmp_path, faulty_sshd.known_hosts_line())
    collector = SSHCollector(SSHConfig(known_hosts=path))
    result = await collector.collect(target(faulty_sshd), key_credentials(faulty_sshd), FAST)
    assert result.outcome is Outcome.PROBE_ERROR
    assert expected in result.reason
    assert len(result.reason) <= 200


@pytest.mark.parametrize("faulty_sshd", ["hang"], indirect=True)
async def test_a_probe_that_never_ends_times_out(faulty_sshd: SSHServer, tmp_path: Path) -> None:
    path = known_hosts(tmp_path, faulty_sshd.known_hosts_line())
    collector = SSHCollector(SSHConfig(known_hosts=path))
    short = Timeouts(connect=5, operation=0.5, total=3)
    started = time.monotonic()
    result = await collector.collect(target(faulty_sshd), key_credentials(faulty_sshd), short)
    assert result.outcome is Outcome.TIMEOUT
    assert time.monotonic() - started < short.total + 1


async def test_closed_port_is_unreachable(tmp_path: Path) -> None:
    collector = SSHCollector(SSHConfig(known_hosts=known_hosts(tmp_path)))
    closed = Target(hostname="127.0.0.1", port=free_port(), transport="ssh")
    creds = Credentials(profile="fleet", username="x", auth="negotiate", password=Secret("pw"))
    result = await collector.collect(closed, creds, FAST)
    assert result.outcome is Outcome.UNREACHABLE
    assert "cannot connect" in result.reason


@pytest.fixture
async def black_hole() -> AsyncIterator[int]:
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept and say nothing, ever

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_black_hole_times_out_within_the_deadline(black_hole: int, tmp_path: Path) -> None:
    collector = SSHCollector(SSHConfig(known_hosts=known_hosts(tmp_path)))
    host = Target(hostname="127.0.0.1", port=black_hole, transport="ssh")
    creds = Credentials(profile="fleet", username="x", auth="negotiate", password=Secret("pw"))
    short = Timeouts(connect=0.5, operation=0.5, total=1)
    started = time.monotonic()
    result = await collector.collect(host, creds, short)
    assert result.outcome is Outcome.TIMEOUT
    assert time.monotonic() - started < short.total + 0.5
