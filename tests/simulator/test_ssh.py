"""The SSH endpoint over a real asyncssh client: the probe, authentication, and each fault."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from collectors.facts import ProbeOutputError, parse_probe_output
from collectors.probe import SSH_COMMAND, stdin_invocation
from simulator.behaviour import Fault
from simulator.fleet import FleetOptions, SimHost, build_fleet
from simulator.profiles import WATCHED_PATTERNS
from simulator.ssh import (
    SERVER_VERSION,
    SSHAccount,
    SSHEndpoint,
    known_hosts_line,
    load_or_create_host_key,
    same_user,
    start_ssh,
)

PROBE = "<# cmscan-probe/1 #>\nparam([string[]]$Patterns)\n$ProbeVersion = '1.0.0'\n"
PASSWORD = "Winter2025!"


@pytest.fixture
def client_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture
async def endpoint(
    tmp_path: Path, loopback_base: str, client_key: asyncssh.SSHKey
) -> AsyncIterator[SSHEndpoint]:
    fleet = build_fleet(
        FleetOptions(hosts=1, seed=4, rtt_ms=1, exec_ms=5, base_address=loopback_base)
    )
    host = fleet.hosts[0]
    account = SSHAccount("cmscan-scan", PASSWORD, (client_key.convert_to_public(),))
    key = load_or_create_host_key(tmp_path / "host_key")
    started = await start_ssh(host, address=host.address, port=0, account=account, host_key=key)
    (tmp_path / "known_hosts").write_text(
        known_hosts_line(key, (host.hostname, host.address), started.port)
    )
    try:
        yield started
    finally:
        await started.close()


def _connect(endpoint: SSHEndpoint, tmp_path: Path, **kwargs: object) -> Any:
    options: dict[str, object] = {
        "username": "cmscan-scan",
        "known_hosts": str(tmp_path / "known_hosts"),
        "client_keys": None,
        "agent_path": None,
        "connect_timeout": 5,
    }
    options.update(kwargs)
    return asyncssh.connect(endpoint.address, endpoint.port, **options)


async def _probe(conn: asyncssh.SSHClientConnection) -> asyncssh.SSHCompletedProcess:
    return await conn.run(
        SSH_COMMAND,
        input=stdin_invocation(PROBE, WATCHED_PATTERNS).encode(),
        encoding=None,
        timeout=10,
    )


async def test_probe_over_password(endpoint: SSHEndpoint, tmp_path: Path) -> None:
    async with _connect(endpoint, tmp_path, password=PASSWORD) as conn:
        assert conn.get_extra_info("server_version") == f"SSH-2.0-{SERVER_VERSION}"
        result = await _probe(conn)
    assert result.exit_status == 0
    assert result.stderr == b""
    assert isinstance(result.stdout, bytes)
    facts = parse_probe_output(result.stdout)
    assert isinstance(endpoint.host, SimHost)
    assert facts == endpoint.host.facts(WATCHED_PATTERNS).model_copy(update={"probe": facts.probe})
    assert facts.probe.patterns == WATCHED_PATTERNS


async def test_probe_over_public_key(
    endpoint: SSHEndpoint, tmp_path: Path, client_key: asyncssh.SSHKey
) -> None:
    async with _connect(
        endpoint, tmp_path, username="SIMFLEET\\CMSCAN-SCAN", client_keys=[client_key]
    ) as conn:
        result = await _probe(conn)
    assert result.exit_status == 0
    parse_probe_output(result.stdout or b"")


async def test_the_host_key_is_checked(endpoint: SSHEndpoint, tmp_path: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    (tmp_path / "wrong_hosts").write_text(
        known_hosts_line(other, (endpoint.address,), endpoint.port)
    )
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        async with _connect(
            endpoint, tmp_path, password=PASSWORD, known_hosts=str(tmp_path / "wrong_hosts")
        ):
            pass


@pytest.mark.parametrize(
    "login",
    [
        {"password": "wrong"},
        {"username": "administrator", "password": PASSWORD},
        {"client_keys": [asyncssh.generate_private_key("ssh-ed25519")]},
    ],
)
async def test_bad_credentials_are_refused(
    endpoint: SSHEndpoint, tmp_path: Path, login: dict[str, object]
) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        async with _connect(endpoint, tmp_path, **login):
            pass


async def test_bad_credentials_fault_refuses_everything(
    endpoint: SSHEndpoint, tmp_path: Path, client_key: asyncssh.SSHKey
) -> None:
    _fault(endpoint, Fault.BAD_CREDENTIALS)
    for login in ({"password": PASSWORD}, {"client_keys": [client_key]}):
        with pytest.raises(asyncssh.PermissionDenied):
            async with _connect(endpoint, tmp_path, **login):
                pass


def _fault(endpoint: SSHEndpoint, fault: Fault | None) -> None:
    assert isinstance(endpoint.host, SimHost)
    endpoint.host.fault = fault


async def test_powered_off_refuses_and_power_on_comes_back_on_the_same_port(
    endpoint: SSHEndpoint, tmp_path: Path
) -> None:
    port = endpoint.port
    _fault(endpoint, Fault.POWERED_OFF)
    await endpoint.refresh()
    with pytest.raises(ConnectionRefusedError):
        async with _connect(endpoint, tmp_path, password=PASSWORD):
            pass
    _fault(endpoint, None)
    await endpoint.refresh()
    assert endpoint.port == port
    async with _connect(endpoint, tmp_path, password=PASSWORD) as conn:
        assert (await _probe(conn)).exit_status == 0


async def test_black_hole_accepts_and_never_speaks(endpoint: SSHEndpoint, tmp_path: Path) -> None:
    _fault(endpoint, Fault.BLACK_HOLE)
    await endpoint.refresh()
    reader, writer = await asyncio.open_connection(endpoint.address, endpoint.port)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), timeout=0.3)
    writer.close()
    with pytest.raises(TimeoutError):
        async with _connect(endpoint, tmp_path, password=PASSWORD, connect_timeout=0.3):
            pass
    await endpoint.close()  # held connections go too


async def test_quota_exceeded_refuses_the_session(endpoint: SSHEndpoint, tmp_path: Path) -> None:
    _fault(endpoint, Fault.QUOTA_EXCEEDED)
    async with _connect(endpoint, tmp_path, password=PASSWORD) as conn:
        with pytest.raises(asyncssh.ChannelOpenError, match="too many sessions"):
            await _probe(conn)


async def test_reset_cuts_the_output(endpoint: SSHEndpoint, tmp_path: Path) -> None:
    _fault(endpoint, Fault.RESET)
    async with _connect(endpoint, tmp_path, password=PASSWORD) as conn:
        process = await conn.create_process(SSH_COMMAND, encoding=None)
        process.stdin.write(stdin_invocation(PROBE, WATCHED_PATTERNS).encode())
        process.stdin.write_eof()
        received: list[bytes] = []
        with pytest.raises((asyncssh.ConnectionLost, asyncssh.DisconnectError, ConnectionError)):
            await _read_to_the_end(process, received)
        with pytest.raises(ProbeOutputError):
            parse_probe_output(b"".join(received))


async def _read_to_the_end(process: asyncssh.SSHClientProcess[bytes], into: list[bytes]) -> None:
    while chunk := await process.stdout.read(65536):
        into.append(chunk)
    await process.wait(check=True, timeout=5)


async def test_output_faults_reach_the_client(endpoint: SSHEndpoint, tmp_path: Path) -> None:
    async with _connect(endpoint, tmp_path, password=PASSWORD) as conn:
        _fault(endpoint, Fault.MALFORMED_OUTPUT)
        malformed = await _probe(conn)
        assert malformed.exit_status == 0
        with pytest.raises(ProbeOutputError, match="malformed"):
            parse_probe_output(malformed.stdout or b"")
        _fault(endpoint, Fault.OVERSIZED_OUTPUT)
        oversized = await _probe(conn)
        with pytest.raises(ProbeOutputError, match="exceeds"):
            parse_probe_output(oversized.stdout or b"")
        _fault(endpoint, Fault.PROBE_EXCEPTION)
        failed = await _probe(conn)
        assert failed.exit_status == 1
        assert failed.stdout == b""
        assert isinstance(failed.stderr, bytes)
        assert b"Requested registry access is not allowed." in failed.stderr
        assert b"FullyQualifiedErrorId : System.Security.SecurityException" in failed.stderr
        _fault(endpoint, Fault.SLOW)
        assert (await _probe(conn)).exit_status == 0


async def test_other_commands_get_windows_answers(endpoint: SSHEndpoint, tmp_path: Path) -> None:
    async with _connect(endpoint, tmp_path, password=PASSWORD) as conn:
        hostname = await conn.run("hostname", timeout=5)
        assert hostname.stdout == endpoint.host.hostname.upper() + "\r\n"
        unknown = await conn.run("uname -a", timeout=5)
        assert unknown.exit_status == 1
        assert unknown.stderr == (
            "'uname' is not recognized as an internal or external command,\r\n"
            "operable program or batch file.\r\n"
        )
        script = await conn.run('powershell.exe -NoProfile -Command "Get-Thing"', timeout=5)
        assert script.exit_status == 1
        assert "The term '\"Get-Thing\"'" not in str(script.stderr)
        assert "CommandNotFoundException" in str(script.stderr)
        garbage = await conn.run(SSH_COMMAND, input="Get-Content C:\\secret.txt\n", timeout=5)
        assert garbage.exit_status == 1
        assert "The term 'Get-Content'" in str(garbage.stderr)


def test_logins_as_windows_reads_them() -> None:
    assert same_user("CMSCAN-SCAN", "cmscan-scan")
    assert same_user("SIMFLEET\\cmscan-scan", "cmscan-scan")
    assert same_user("cmscan-scan@simfleet.local", "cmscan-scan")
    assert not same_user("cmscan", "cmscan-scan")


def test_host_keys_persist(tmp_path: Path) -> None:
    first = load_or_create_host_key(tmp_path / "keys" / "k")
    assert (tmp_path / "keys" / "k").stat().st_mode & 0o777 == 0o600
    assert load_or_create_host_key(tmp_path / "keys" / "k").public_data == first.public_data
    line = known_hosts_line(first, ("a81001-ws001", "127.10.0.1"), 2222)
    assert line.startswith("[a81001-ws001]:2222,[127.10.0.1]:2222 ssh-ed25519 ")
    assert known_hosts_line(first, ("h",), 22).startswith("h ssh-ed25519 ")
    assert socket  # the module is used for its exceptions above
