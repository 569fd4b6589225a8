"""The SSH collector: runs the probe through Windows OpenSSH's powershell.exe with asyncssh.

Exceptions become outcomes in one place, `_translate`:

    TimeoutError ............... before TCP connected -> unreachable; after -> timeout
    OSError (refused, no route,
             name not found) ... before TCP connected -> unreachable; after -> protocol_error
    PermissionDenied, an SSH
             key that cannot
             be loaded ......... auth_failed
    HostKeyNotVerifiable ....... protocol_error, naming the fingerprints involved
    known_hosts or profile
             unusable .......... protocol_error
    other asyncssh errors ...... protocol_error
    _ProbeFailedError,
             oversized output .. probe_error (bad output, non-zero exit with stderr)
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import re
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from collectors.base import Outcome, ScanResult, Target, Timeouts
from collectors.credentials import Credentials, Secret
from collectors.facts import Facts, ProbeOutputError, parse_probe_output
from collectors.probe import probe_script, stdin_invocation
from collectors.ssh_config import HostKeyStore, PinnedKey, SSHConfig

__all__ = ["NAME", "HostKeyStore", "PinnedKey", "SSHCollector", "SSHConfig"]

NAME = "ssh"

log = logging.getLogger(__name__)

# Enough of stderr to explain a failure; the rest is read and dropped so the host never
# blocks on a full channel window.
_STDERR_KEEP = 4096
_CLOSE_GRACE_S = 2.0


class SSHCollector:
    """Probes a host over SSH: one connection, one powershell.exe process, then closed."""

    name = NAME

    def __init__(
        self,
        config: SSHConfig | None = None,
        *,
        host_keys: HostKeyStore | None = None,
        script: str | None = None,
    ) -> None:
        self.config = config or SSHConfig()
        if self.config.host_key_policy == "tofu" and host_keys is None:
            raise ValueError('ssh.host_key_policy = "tofu" needs a host key store')
        self._host_keys = host_keys
        self._script = script
        self._known_hosts: tuple[tuple[int, int], asyncssh.SSHKnownHosts] | None = None
        # Keyed by the passphrase too (a Secret compares by value and never prints).
        self._client_keys: dict[tuple[str, int, int, Secret | None], asyncssh.SSHKey] = {}

    async def open(self) -> None:
        """Check that host keys can be verified before the first probe."""
        if self.config.host_key_policy == "known_hosts":
            self._load_known_hosts()

    async def aclose(self) -> None:
        """Forget decrypted keys; no connection outlives its probe."""
        self._client_keys.clear()

    async def collect(
        self, target: Target, credentials: Credentials, timeouts: Timeouts
    ) -> ScanResult:
        started = time.monotonic()
        state = _ConnectionState()
        try:
            async with asyncio.timeout(timeouts.total):
                facts, details = await self._probe(target, credentials, timeouts, state)
        except Exception as exc:  # every failure becomes an outcome; CancelledError passes
            outcome, reason = _translate(exc, state, target, timeouts, credentials.profile)
            log.debug("ssh probe of %s: %s (%s)", target.hostname, outcome, reason)
            return ScanResult(
                outcome=outcome,
                transport=NAME,
                duration_s=time.monotonic() - started,
                reason=reason,
                details=state.details(),
            )
        return ScanResult(
            outcome=Outcome.OK,
            transport=NAME,
            duration_s=time.monotonic() - started,
            facts=facts,
            details=details,
        )

    async def _probe(
        self,
        target: Target,
        credentials: Credentials,
        timeouts: Timeouts,
        state: _ConnectionState,
    ) -> tuple[Facts, dict[str, str]]:
        options = await self._connect_options(target, credentials, timeouts, state)
        connection = await asyncssh.connect(target.dial, target.port, **options)
        target.authenticated()  # connect returns once the login has been accepted
        try:
            if state.pin_after_login is not None:
                await self._pin(target, state)
            async with asyncio.timeout(timeouts.operation):
                stdout, stderr, status = await _run(
                    connection,
                    self.config.command,
                    stdin_invocation(self._script or probe_script(), target.patterns),
                    self.config.max_output_bytes,
                )
        except BaseException:
            connection.abort()
            raise
        await _close(connection)
        try:
            facts = parse_probe_output(stdout)
        except ProbeOutputError as exc:
            raise _ProbeFailedError(_failure_reason(exc.reason, stderr, status)) from exc
        return facts, state.details()

    async def _connect_options(
        self,
        target: Target,
        credentials: Credentials,
        timeouts: Timeouts,
        state: _ConnectionState,
    ) -> dict[str, object]:
        if credentials.username is None:
            # A Kerberos profile may leave it out for WinRM; an SSH login always names a user.
            raise _ConfigurationError(
                f"credential profile {credentials.profile!r} has no username, which SSH needs"
            )
        if self.config.host_key_policy == "tofu":
            assert self._host_keys is not None
            pinned = await self._host_keys.get(target.hostname, target.port)
            state.pinned = pinned
            trusted = [asyncssh.import_public_key(pinned.public_key)] if pinned else []
            known_hosts: object = (trusted, [], [])
        else:
            known_hosts = self._load_known_hosts()
        client_keys = None
        if credentials.ssh_key_file is not None:
            client_keys = [await self._client_key(credentials)]
        kerberos = credentials.auth == "kerberos"
        return {
            "client_factory": lambda: _Client(state, self.config, target),
            "known_hosts": known_hosts,
            # Verify the name the inventory knows, even when an address is dialled.
            "host_key_alias": target.hostname if target.address else None,
            "username": credentials.username,
            "password": credentials.password.reveal() if credentials.password else None,
            "client_keys": client_keys,
            "passphrase": None,
            "agent_path": None,  # only the profile's own secrets, never an agent's keys
            # Kerberos asks for host/<name>, so the inventory name even when dialling an address.
            "gss_host": target.hostname if kerberos else None,
            "gss_delegate_creds": False,
            "config": None,  # a personal ~/.ssh/config must not change a fleet scan
            "connect_timeout": min(timeouts.connect, timeouts.total),
            "keepalive_interval": 0,
        }

    async def _client_key(self, credentials: Credentials) -> asyncssh.SSHKey:
        """The profile's private key, decrypted once and kept while the file is unchanged."""
        path = credentials.ssh_key_file
        assert path is not None
        try:
            info = path.stat()
        except OSError as exc:
            raise _KeyFileError(
                f"cannot read SSH key {path} of profile {credentials.profile!r}: {exc.strerror}"
            ) from None
        secret = credentials.ssh_key_passphrase
        cache_key = (str(path), info.st_mtime_ns, info.st_size, secret)
        cached = self._client_keys.get(cache_key)
        if cached is not None:
            return cached
        # Decrypting costs tens of milliseconds of bcrypt: keep it off the event loop.
        key = await asyncio.to_thread(
            _load_key, path, secret.reveal() if secret else None, credentials.profile
        )
        self._client_keys[cache_key] = key
        return key

    async def _pin(self, target: Target, state: _ConnectionState) -> None:
        assert self._host_keys is not None
        assert state.pin_after_login is not None
        pinned = await self._host_keys.pin(target.hostname, target.port, state.pin_after_login)
        if pinned.fingerprint != state.pin_after_login.fingerprint:
            # Another scanner pinned a different key for this host a moment ago.
            state.pinned = pinned
            state.mismatch = state.pin_after_login
            raise asyncssh.HostKeyNotVerifiable("host key changed while pinning")
        log.info(
            "pinned SSH host key %s for %s:%d on first use",
            pinned.fingerprint,
            target.hostname,
            target.port,
        )

    def _load_known_hosts(self) -> asyncssh.SSHKnownHosts:
        path = self.config.known_hosts
        assert path is not None
        path = path.expanduser()
        try:
            info = path.stat()
        except OSError as exc:
            raise _KnownHostsError(f"cannot read known_hosts {path}: {exc.strerror}") from None
        stamp = (info.st_mtime_ns, info.st_size)
        if self._known_hosts is None or self._known_hosts[0] != stamp:
            # Re-read when the file changes, so adding a host needs no restart.
            try:
                known = asyncssh.read_known_hosts(str(path))
            except (OSError, ValueError) as exc:
                raise _KnownHostsError(f"cannot read known_hosts {path}: {exc}") from None
            self._known_hosts = (stamp, known)
        return self._known_hosts[1]


class _ProbeFailedError(Exception):
    """The probe ran but gave nothing usable; the message is the short reason."""


class _KnownHostsError(Exception):
    """The known_hosts file cannot be used."""


class _ConfigurationError(Exception):
    """The profile cannot be used over SSH; the message says why."""


class _OutputTooLargeError(Exception):
    pass


@dataclass(slots=True)
class _ConnectionState:
    """What one connection attempt learnt, for the outcome and its reason."""

    connected: bool = False
    logged_in: bool = False
    presented: PinnedKey | None = None
    pinned: PinnedKey | None = None
    mismatch: PinnedKey | None = None  # a presented key that was refused
    known_fingerprints: tuple[str, ...] = ()
    pin_after_login: PinnedKey | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def details(self) -> dict[str, str]:
        details = dict(self.extra)
        if self.presented is not None:
            details["host_key"] = self.presented.fingerprint
        return details


class _Client(asyncssh.SSHClient):
    """Records the connection's progress and decides on keys no trusted list vouches for."""

    def __init__(self, state: _ConnectionState, config: SSHConfig, target: Target) -> None:
        self._state = state
        self._config = config
        self._target = target
        self._conn: asyncssh.SSHClientConnection | None = None

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self._state.connected = True
        self._conn = conn

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        # asyncssh asks only about keys outside the trusted list it was given; it checks the
        # host's signature with the key afterwards, so accepting here is not blind trust.
        presented = PinnedKey.of(key)
        self._state.presented = presented
        if self._config.host_key_policy == "tofu" and self._state.pinned is None:
            self._state.pin_after_login = presented
            return True
        self._state.mismatch = presented
        return False

    def auth_completed(self) -> None:
        self._state.logged_in = True
        if self._state.presented is None and self._conn is not None:
            # A trusted key matched without a callback: fetch it for the scan's details.
            key = self._conn.get_server_host_key()
            if key is not None:
                self._state.presented = PinnedKey.of(key)


async def _run(
    connection: asyncssh.SSHClientConnection,
    command: str,
    invocation: str,
    cap: int,
) -> tuple[bytes, bytes, int | None]:
    """Run the command with the invocation on stdin; stdout bounded by `cap` bytes."""
    process = await connection.create_process(command, encoding=None)
    stderr_task = asyncio.create_task(_drain(process.stderr, _STDERR_KEEP))
    try:
        process.stdin.write(invocation.encode("utf-8"))
        process.stdin.write_eof()
        chunks: list[bytes] = []
        size = 0
        while chunk := await process.stdout.read(65536):
            size += len(chunk)
            if size > cap:
                raise _OutputTooLargeError(f"output exceeds the {cap} byte limit")
            chunks.append(chunk)
        await process.wait_closed()
        stderr = await stderr_task
    finally:
        stderr_task.cancel()
        process.close()
    return b"".join(chunks), stderr, process.exit_status


async def _drain(stream: asyncssh.SSHReader[bytes], keep: int) -> bytes:
    kept = bytearray()
    while chunk := await stream.read(65536):
        if len(kept) < keep:
            kept += chunk[: keep - len(kept)]
    return bytes(kept)


async def _close(connection: asyncssh.SSHClientConnection) -> None:
    connection.close()
    try:
        async with asyncio.timeout(_CLOSE_GRACE_S):
            await connection.wait_closed()
    except TimeoutError:
        connection.abort()


def _load_key(path: Path, passphrase: str | None, profile: str) -> asyncssh.SSHKey:
    try:
        with warnings.catch_warnings():
            # ssh-keygen encrypts with 16 bcrypt rounds, which bcrypt warns about on every
            # load; the key is the user's choice and the warning not ours to repeat.
            warnings.filterwarnings("ignore", ".*bcrypt", UserWarning)
            return asyncssh.read_private_key(path, passphrase)
    except (OSError, ValueError) as exc:
        # The key-loading errors never contain the passphrase, but name only the file anyway.
        kind = "unreadable" if isinstance(exc, OSError) else "wrong passphrase or unsupported key"
        raise _KeyFileError(f"cannot load SSH key {path} of profile {profile!r}: {kind}") from None


class _KeyFileError(Exception):
    pass


def _translate(
    exc: BaseException, state: _ConnectionState, target: Target, timeouts: Timeouts, profile: str
) -> tuple[Outcome, str]:
    """The one place where a failure becomes an outcome with a short reason."""
    where = f"{target.dial}:{target.port}"
    if isinstance(exc, TimeoutError):
        if not state.connected:
            return Outcome.UNREACHABLE, f"connect to {where} timed out"
        if not state.logged_in:
            return Outcome.TIMEOUT, (
                f"{where} accepted the connection but did not complete the SSH login"
                f" within {min(timeouts.connect, timeouts.total):g}s"
            )
        return Outcome.TIMEOUT, f"the probe did not finish within {_budget(timeouts)}"
    if isinstance(exc, _ProbeFailedError):
        return Outcome.PROBE_ERROR, str(exc)
    if isinstance(exc, _OutputTooLargeError):
        return Outcome.PROBE_ERROR, str(exc)
    if isinstance(exc, _KeyFileError):
        return Outcome.AUTH_FAILED, str(exc)
    if isinstance(exc, _KnownHostsError | _ConfigurationError):
        return Outcome.PROTOCOL_ERROR, str(exc)
    if isinstance(exc, asyncssh.PermissionDenied):
        return Outcome.AUTH_FAILED, f"{where} refused the credentials of profile {profile!r}"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return Outcome.PROTOCOL_ERROR, _host_key_reason(state, target)
    if isinstance(exc, asyncssh.DisconnectError | asyncssh.ChannelOpenError):
        return Outcome.PROTOCOL_ERROR, f"ssh: {_short(exc.reason)}"
    if isinstance(exc, ConnectionResetError | BrokenPipeError) and state.connected:
        return Outcome.PROTOCOL_ERROR, f"connection to {where} reset"
    if isinstance(exc, socket.gaierror):
        return Outcome.UNREACHABLE, f"cannot resolve {target.dial}: {_short(exc.strerror)}"
    if isinstance(exc, OSError):
        detail = os.strerror(exc.errno) if exc.errno else exc.strerror or type(exc).__name__
        if state.connected:
            return Outcome.PROTOCOL_ERROR, f"{where}: {_short(detail)}"
        return Outcome.UNREACHABLE, f"cannot connect to {where}: {_short(detail)}"
    log.warning("unexpected %s while probing %s over ssh", type(exc).__name__, target.hostname)
    return Outcome.PROTOCOL_ERROR, f"ssh: {type(exc).__name__}: {_short(str(exc))}"


def _host_key_reason(state: _ConnectionState, target: Target) -> str:
    new = state.mismatch or state.presented
    name = f"{target.hostname}:{target.port}"
    if new is None:
        return f"host key of {name} not verifiable"
    if state.pinned is not None:
        return (
            f"host key of {name} changed: pinned {state.pinned.fingerprint},"
            f" offered {new.fingerprint}; if the host was rebuilt, run"
            f" `cmscan inventory forget-host-key {target.hostname} --port {target.port}`"
        )
    return f"host key {new.fingerprint} of {name} does not match known_hosts"


def _failure_reason(parse_reason: str, stderr: bytes, status: int | None) -> str:
    message = _first_error_line(stderr)
    if message:
        return _short(f"probe failed (exit {status}): {message}")
    return _short(parse_reason if status in (0, None) else f"{parse_reason} (exit {status})")


def _first_error_line(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace")
    if text.startswith("#< CLIXML"):
        # powershell.exe writes its streams as CLIXML when stderr is not a console: keep the
        # error records' text, leave out progress records and the XML around them.
        text = "".join(
            _CLIXML_ESCAPE.sub(lambda m: chr(int(m[1], 16)), html.unescape(record))
            for record in _CLIXML_ERROR.findall(text)
        )
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return next((line for line in lines if line), "")


_CLIXML_ERROR = re.compile(r'<S S="Error">(.*?)</S>', re.DOTALL)
_CLIXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def _short(text: str | None, limit: int = 200) -> str:
    # Only printable characters: a hostile host chooses these bytes.
    cleaned = "".join(c if c.isprintable() else " " for c in (text or ""))
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _budget(timeouts: Timeouts) -> str:
    return f"{min(timeouts.operation, timeouts.total):g}s (operation) / {timeouts.total:g}s (total)"
