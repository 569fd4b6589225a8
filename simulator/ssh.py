"""A simulated host's SSH endpoint: Windows OpenSSH running cmd.exe, answering cmscan's probe."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import asyncssh

from collectors.probe import parse_stdin_invocation
from simulator.answers import error_text
from simulator.behaviour import Fault, ScriptResult, SimulatedHost

DEFAULT_PORT = 2222
# Windows OpenSSH announces itself like this; clients and logs show it.
SERVER_VERSION = "OpenSSH_for_Windows_9.5"
# stdin a session may send before the simulated shell gives up: the probe is a few KiB.
MAX_STDIN_BYTES = 4 * 1024 * 1024

_POWERSHELL = re.compile(r"^\s*\"?(?:powershell|pwsh)(?:\.exe)?\"?(?=\s|$)(?P<args>.*)$", re.I)
_NOT_RECOGNISED = (
    "'{word}' is not recognized as an internal or external command,\r\n"
    "operable program or batch file.\r\n"
)


@dataclass(frozen=True)
class SSHAccount:
    """The simulated account: its password and the public keys it may log in with."""

    username: str
    password: str
    client_keys: tuple[asyncssh.SSHKey, ...] = ()


def same_user(given: str, expected: str) -> bool:
    """Whether a login name is the account, as Windows reads it (any case, DOMAIN\\ or @domain)."""
    name = given.rsplit("\\", 1)[-1].split("@", 1)[0]
    return name.casefold() == expected.casefold()


def load_or_create_host_key(path: Path) -> asyncssh.SSHKey:
    """The host key kept at `path`, created (Ed25519, mode 0600) the first time."""
    if path.exists():
        return asyncssh.read_private_key(path)
    key = asyncssh.generate_private_key("ssh-ed25519")
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key.export_private_key("openssh"))
    return key


def known_hosts_line(key: asyncssh.SSHKey, names: Sequence[str], port: int) -> str:
    """One known_hosts line for a host reachable under `names` on `port`."""
    patterns = ",".join(name if port == 22 else f"[{name}]:{port}" for name in names)
    public = key.export_public_key("openssh").decode("ascii").split()
    return f"{patterns} {public[0]} {public[1]}\n"


def bound_socket(address: str, port: int) -> socket.socket:
    """A TCP socket bound to (address, port) but not listening: a connection to it is refused,
    which is what a switched-off host looks like, and the port stays ours for power-on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _Silent(asyncio.Protocol):
    """Accepts a connection and never says a word: a black-holed host behind a firewall."""

    def __init__(self, held: set[asyncio.Transport]) -> None:
        self._held = held
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._held.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._held.discard(self._transport)


def _reset(connection: asyncssh.SSHServerConnection) -> None:
    """Drop the TCP connection with a RST, as a crashing sshd or a middlebox would."""
    sock = connection.get_extra_info("socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.abort()


class _HostServer(asyncssh.SSHServer):
    """One SSH connection to a simulated host."""

    def __init__(
        self,
        host: SimulatedHost,
        account: SSHAccount,
        connections: set[asyncssh.SSHServerConnection],
    ) -> None:
        self._host = host
        self._account = account
        self._connections = connections
        self._connection: asyncssh.SSHServerConnection | None = None
        self._username = ""

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._connection = conn
        self._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._connection is not None:
            self._connections.discard(self._connection)

    async def begin_auth(self, username: str) -> bool:
        self._username = username
        # Authentication starts after the key exchange and the service request: two round
        # trips on a real network that loopback would otherwise make free.
        await asyncio.sleep(2 * self._host.timing().round_trip)
        return True

    def password_auth_supported(self) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        await asyncio.sleep(self._host.timing().round_trip)
        if self._host.fault is Fault.BAD_CREDENTIALS:
            return False
        return same_user(username, self._account.username) and password == self._account.password

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        await asyncio.sleep(self._host.timing().round_trip)
        if self._host.fault is Fault.BAD_CREDENTIALS or not same_user(
            username, self._account.username
        ):
            return False
        wanted = key.public_data
        return any(k.public_data == wanted for k in self._account.client_keys)

    def session_requested(
        self,
    ) -> Callable[
        [asyncssh.SSHReader[bytes], asyncssh.SSHWriter[bytes], asyncssh.SSHWriter[bytes]],
        Awaitable[None],
    ]:
        if self._host.fault is Fault.QUOTA_EXCEEDED:
            # Windows OpenSSH's MaxSessions: the connection is up, but no shell is allowed.
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "open failed: too many sessions"
            )
        return self._session

    async def _session(
        self,
        stdin: asyncssh.SSHReader[bytes],
        stdout: asyncssh.SSHWriter[bytes],
        stderr: asyncssh.SSHWriter[bytes],
    ) -> None:
        channel = cast(asyncssh.SSHServerChannel[bytes], stdout.channel)
        try:
            # Opening the channel and its exec request: one more round trip.
            await asyncio.sleep(self._host.timing().round_trip)
            status = await self._command(channel.get_command(), stdin, stdout, stderr)
            channel.exit(status)
        except (BrokenPipeError, ConnectionError, asyncssh.Error):
            return  # the client went away; nothing is left to tell it

    async def _command(
        self,
        command: str | None,
        stdin: asyncssh.SSHReader[bytes],
        stdout: asyncssh.SSHWriter[bytes],
        stderr: asyncssh.SSHWriter[bytes],
    ) -> int:
        computer = self._computer_name()
        if command is None or not command.strip():
            # An interactive login: cmd.exe greets, and we leave when stdin closes.
            stdout.write(
                b"Microsoft Windows [Version 10.0.19045.5247]\r\n"
                b"(c) Microsoft Corporation. All rights reserved.\r\n\r\n"
                + f"C:\\Users\\{self._short_user()}>".encode()
            )
            await _read_all(stdin)
            return 0
        powershell = _POWERSHELL.match(command)
        if powershell is None:
            return self._cmd(command, computer, stdout, stderr)
        script = _inline_script(powershell["args"])
        if script is None:
            data = await _read_all(stdin)
            if data is None:
                stderr.write(b"The input is too long for the command line.\r\n")
                return 1
            text = data.decode("utf-8", "replace")
            invocation = parse_stdin_invocation(text)
            if invocation is None:
                return await self._run(text, {}, stdout, stderr, shown=text)
            source, patterns = invocation
            return await self._run(source, {"Patterns": patterns}, stdout, stderr, shown=text)
        return await self._run(script, {}, stdout, stderr, shown=script)

    async def _run(
        self,
        script: str,
        parameters: dict[str, object],
        stdout: asyncssh.SSHWriter[bytes],
        stderr: asyncssh.SSHWriter[bytes],
        *,
        shown: str,
    ) -> int:
        timing = self._host.timing()
        await asyncio.sleep(timing.runspace_open + timing.script_run)
        result: ScriptResult = self._host.run_script(script, parameters)
        if result.error is not None:
            stderr.write(error_text(result.error, shown).encode("utf-8"))
            return 1
        output = (result.output + "\r\n").encode("utf-8") if result.output else b""
        if self._host.fault is Fault.RESET and self._connection is not None:
            stdout.write(output[: max(1, len(output) // 2)])
            await stdout.drain()
            _reset(self._connection)
            raise ConnectionResetError("simulated reset")
        stdout.write(output)
        return 0

    def _cmd(
        self,
        command: str,
        computer: str,
        stdout: asyncssh.SSHWriter[bytes],
        stderr: asyncssh.SSHWriter[bytes],
    ) -> int:
        word = command.strip().split()[0].strip('"')[:200]
        folded = word.casefold().removesuffix(".exe")
        if folded == "hostname":
            stdout.write(f"{computer}\r\n".encode())
        elif folded == "whoami":
            stdout.write(f"{computer.lower()}\\{self._short_user().lower()}\r\n".encode())
        elif folded == "ver":
            stdout.write(b"\r\nMicrosoft Windows [Version 10.0.19045.5247]\r\n")
        elif folded == "exit":
            return 0
        else:
            stderr.write(_NOT_RECOGNISED.format(word=word).encode("utf-8", "replace"))
            return 1
        return 0

    def _computer_name(self) -> str:
        return self._host.hostname.split(".", 1)[0].upper()

    def _short_user(self) -> str:
        return self._username.rsplit("\\", 1)[-1].split("@", 1)[0] or "user"


async def _read_all(stdin: asyncssh.SSHReader[bytes]) -> bytes | None:
    """Everything the client sends until EOF, or None when it sends more than any real script."""
    data = bytearray()
    while chunk := await stdin.read(65536):
        data += chunk
        if len(data) > MAX_STDIN_BYTES:
            return None
    return bytes(data)


def _inline_script(arguments: str) -> str | None:
    """The script given on powershell.exe's command line, or None when it comes from stdin."""
    words = arguments.split()
    for index, word in enumerate(words):
        flag = word.casefold()
        if flag in ("-encodedcommand", "-enc", "-e", "-ec") and index + 1 < len(words):
            try:
                return base64.b64decode(words[index + 1], validate=True).decode("utf-16-le")
            except (ValueError, UnicodeDecodeError):
                return words[index + 1]
        if flag in ("-command", "-c", "-comm", "-com"):
            rest = " ".join(words[index + 1 :])
            if len(rest) > 1 and rest[0] == rest[-1] == '"':
                rest = rest[1:-1]  # the command line's quotes are not part of the script
            return None if rest in ("", "-") else rest
    return None


class SSHEndpoint:
    """A host's SSH listener. What listens follows the host's fault: nothing when it is
    powered off (the port is held, connections are refused), a silent socket for a black
    hole, otherwise an SSH server."""

    def __init__(
        self,
        host: SimulatedHost,
        *,
        address: str,
        port: int,
        account: SSHAccount,
        key: asyncssh.SSHKey,
    ) -> None:
        self.host = host
        self.address = address
        self.port = port
        self._account = account
        self._key = key
        self._kind = ""
        self._reserved: socket.socket | None = None
        self._server: asyncio.AbstractServer | asyncssh.SSHAcceptor | None = None
        self._held: set[asyncio.Transport] = set()
        self._connections: set[asyncssh.SSHServerConnection] = set()

    def _wanted(self) -> str:
        if self.host.fault is Fault.POWERED_OFF:
            return "off"
        return "silent" if self.host.fault is Fault.BLACK_HOLE else "ssh"

    async def refresh(self) -> None:
        """Make the listener match the host's current fault (after a change at run time)."""
        wanted = self._wanted()
        if wanted == self._kind:
            return
        await self._stop()
        sock = self._reserved or bound_socket(self.address, self.port)
        self._reserved = None
        self.port = sock.getsockname()[1]
        try:
            if wanted == "off":
                self._reserved = sock
            elif wanted == "silent":
                loop = asyncio.get_running_loop()
                self._server = await loop.create_server(
                    lambda: _Silent(self._held), sock=sock, backlog=64
                )
            else:
                self._server = await asyncssh.listen(
                    sock=sock,
                    backlog=64,
                    server_factory=lambda: _HostServer(self.host, self._account, self._connections),
                    server_host_keys=[self._key],
                    server_version=SERVER_VERSION,
                    encoding=None,
                    allow_scp=False,
                    line_editor=False,
                    agent_forwarding=False,
                    x11_forwarding=False,
                    login_timeout=60,
                )
        except BaseException:
            sock.close()
            raise
        self._kind = wanted

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            # A machine that goes away takes its open connections with it.
            for transport in list(self._held):
                transport.abort()
            self._held.clear()
            for connection in list(self._connections):
                connection.abort()
            self._connections.clear()
            await server.wait_closed()
        self._kind = ""

    async def close(self) -> None:
        await self._stop()
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None


async def start_ssh(
    host: SimulatedHost,
    *,
    address: str,
    port: int = DEFAULT_PORT,
    account: SSHAccount,
    host_key: asyncssh.SSHKey,
) -> SSHEndpoint:
    """Start a host's SSH endpoint on (address, port); port 0 picks a free one."""
    endpoint = SSHEndpoint(host, address=address, port=port, account=account, key=host_key)
    await endpoint.refresh()
    return endpoint
