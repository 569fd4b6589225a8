"""WinRM authentication as Windows does it: NTLM, Negotiate, Basic, and message encryption.

NTLM and Negotiate use pyspnego's acceptor; Basic is offered over HTTPS only; over plain HTTP
every envelope travels sealed (multipart/encrypted) with the NTLM session keys.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import hmac
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

import spnego
from pypsrp.encryption import WinRMEncryption
from spnego._ntlm_raw.crypto import lmowfv1, ntowfv1

# What a Windows WinRM listener offers on a 401. Basic is offered only over HTTPS because
# AllowUnencrypted=false keeps clear-text credentials off plain HTTP.
CHALLENGES_HTTP = (("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM"))
CHALLENGES_HTTPS = (*CHALLENGES_HTTP, ("WWW-Authenticate", 'Basic realm="WSMAN"'))

ENCRYPTED_PROTOCOL = WinRMEncryption.SPNEGO
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_SESSION_SCHEMES = {"negotiate": "Negotiate", "ntlm": "NTLM", "kerberos": "Kerberos"}
# An Authorization header larger than this is not an NTLM or SPNEGO token.
MAX_TOKEN_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class Account:
    """The one account the simulated fleet accepts; `DOMAIN\\user` and `user` both name it."""

    username: str
    password: str

    def __post_init__(self) -> None:
        if not self.username or any(c in self.username for c in ":\r\n"):
            raise ValueError("account username must be non-empty without ':' or line breaks")
        if not self.user:
            raise ValueError(f"account username {self.username!r} has an empty user part")

    def __repr__(self) -> str:
        # The password never appears in logs or tracebacks.
        return f"Account(username={self.username!r}, password=<hidden>)"

    @property
    def domain(self) -> str:
        return self.username.split("\\", 1)[0] if "\\" in self.username else ""

    @property
    def user(self) -> str:
        return self.username.split("\\", 1)[1] if "\\" in self.username else self.username

    def names(self, principal: str | None) -> bool:
        """Whether a logon name (`user`, `.\\user`, `DOMAIN\\user`) is this account."""
        if not principal:
            return False
        domain, _, user = principal.rpartition("\\")
        if user.casefold() != self.user.casefold():
            return False
        return domain in ("", ".") or domain.casefold() == self.domain.casefold()


class _NTLMCredentials:
    """Hands pyspnego's NTLM acceptor the accounts it may accept.

    pyspnego's acceptor reads credentials from the file named by NTLM_USER_FILE. The file
    holds NT hashes only and, on Linux, lives in an anonymous in-memory file, so no password
    (or hash) is ever written to disk.
    """

    def __init__(self) -> None:
        # Endpoints may run on event loops in several threads; the store is process-wide.
        self._lock = threading.Lock()
        self._accounts: dict[str, tuple[Account, int]] = {}
        self._fd: int | None = None
        self._directory: str | None = None
        self._path: str | None = None
        self._previous: str | None = None

    def register(self, account: Account) -> None:
        with self._lock:
            for known, _ in self._accounts.values():
                same_user = known.user.casefold() == account.user.casefold()
                if same_user and known.password != account.password:
                    raise ValueError(
                        f"account {account.username!r} is already served with another password"
                    )
            key = account.username.casefold()
            _, count = self._accounts.get(key, (account, 0))
            self._accounts[key] = (account, count + 1)
            if count == 0:
                self._write()

    def unregister(self, account: Account) -> None:
        with self._lock:
            key = account.username.casefold()
            known = self._accounts.get(key)
            if known is None:
                return
            if known[1] > 1:
                self._accounts[key] = (known[0], known[1] - 1)
                return
            del self._accounts[key]
            self._write()

    def _write(self) -> None:
        lines: list[str] = []
        for account, _ in self._accounts.values():
            lm = base64.b16encode(lmowfv1(account.password)).decode()
            nt = base64.b16encode(ntowfv1(account.password)).decode()
            logons = {account.user, f".\\{account.user}"}
            if account.domain:
                logons.add(f"{account.domain}\\{account.user}")
            lines.extend(f"{logon}:0:{lm}:{nt}:[U]:LCT-00000000" for logon in sorted(logons))
        content = ("\n".join(lines) + "\n").encode() if lines else b""
        path = self._open()
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, content, 0)
        else:
            with open(path, "wb") as file:
                file.write(content)
        if lines:
            if os.environ.get("NTLM_USER_FILE") != path:
                self._previous = os.environ.get("NTLM_USER_FILE")
                os.environ["NTLM_USER_FILE"] = path
        elif os.environ.get("NTLM_USER_FILE") == path:
            if self._previous is None:
                del os.environ["NTLM_USER_FILE"]
            else:
                os.environ["NTLM_USER_FILE"] = self._previous

    def _open(self) -> str:
        if self._path is not None:
            return self._path
        if hasattr(os, "memfd_create"):
            self._fd = os.memfd_create("cmscan-simulator-ntlm", os.MFD_CLOEXEC)
            self._path = f"/proc/self/fd/{self._fd}"
        else:  # pragma: no cover - non-Linux fallback: a private file removed at exit
            self._directory = tempfile.mkdtemp(prefix="cmscan-ntlm-")
            self._path = os.path.join(self._directory, "users")
            atexit.register(shutil.rmtree, self._directory, True)
        return self._path


NTLM_CREDENTIALS = _NTLMCredentials()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer to one request's credentials: go on, or reply with 401 and these headers."""

    authenticated: bool
    headers: tuple[tuple[str, str], ...] = ()


class ConnectionAuth:
    """One TCP connection's authentication. NTLM authenticates the connection, not a request,
    so the established context (and its message encryption) lives as long as the socket."""

    def __init__(self, account: Account, *, tls: bool) -> None:
        self._account = account
        self._tls = tls
        self._context: Any = None
        self._scheme = ""
        self.session_authenticated = False
        self.encryption: WinRMEncryption | None = None

    @property
    def challenges(self) -> tuple[tuple[str, str], ...]:
        return CHALLENGES_HTTPS if self._tls else CHALLENGES_HTTP

    def check(self, authorization: str | None, *, rejected: bool) -> Verdict:
        """Judge a request's Authorization header; `rejected` makes the host refuse anyway."""
        if authorization is None:
            if self.session_authenticated and not rejected:
                return Verdict(True)
            return Verdict(False, self.challenges)
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "basic":
            return self._basic(token.strip(), rejected=rejected)
        session_scheme = _SESSION_SCHEMES.get(scheme.lower())
        if session_scheme is None or len(token) > MAX_TOKEN_BYTES:
            return self._refuse()
        try:
            in_token = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return self._refuse()
        if self._context is None or self._context.complete:
            # A new handshake starts over, even on a connection that was authenticated.
            self._reset()
            self._context = spnego.server(protocol="negotiate")
            self._scheme = session_scheme
        try:
            out_token = self._context.step(in_token)
        except Exception:
            return self._refuse()
        if not self._context.complete:
            if not out_token:
                return self._refuse()
            return Verdict(False, (("WWW-Authenticate", _token_header(self._scheme, out_token)),))
        if rejected or not self._account.names(self._context.client_principal):
            return self._refuse()
        self.session_authenticated = True
        self.encryption = WinRMEncryption(self._context, ENCRYPTED_PROTOCOL)
        if out_token:
            return Verdict(True, (("WWW-Authenticate", _token_header(self._scheme, out_token)),))
        return Verdict(True)

    def _basic(self, token: str, *, rejected: bool) -> Verdict:
        # Clear-text credentials are only acceptable inside TLS (AllowUnencrypted=false).
        if not self._tls:
            return self._refuse()
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return self._refuse()
        username, separator, password = decoded.partition(":")
        good = bool(separator) and hmac.compare_digest(
            password.encode(), self._account.password.encode()
        )
        if rejected or not good or not self._account.names(username):
            return self._refuse()
        return Verdict(True)

    def _refuse(self) -> Verdict:
        self._reset()
        return Verdict(False, self.challenges)

    def _reset(self) -> None:
        self._context = None
        self.session_authenticated = False
        self.encryption = None


def _token_header(scheme: str, token: bytes) -> str:
    return f"{scheme} {base64.b64encode(token).decode('ascii')}"


class EncryptionError(Exception):
    """An encrypted body could not be opened: wrong keys, tampering or a malformed envelope."""


def is_encrypted(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind in ("multipart/encrypted", "multipart/x-multi-encrypted")


def decrypt(encryption: WinRMEncryption, body: bytes, content_type: str) -> bytes:
    """The SOAP envelope inside a multipart/encrypted body."""
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise EncryptionError("multipart/encrypted body without a boundary")
    try:
        # pypsrp's parser is written for trusted servers: any failure here is a bad body.
        return bytes(encryption.unwrap_message(body, match.group(1)))
    except Exception as exc:
        raise EncryptionError(f"cannot decrypt the message: {type(exc).__name__}") from exc


def encrypt(encryption: WinRMEncryption, envelope: bytes) -> tuple[str, bytes]:
    """The Content-Type header and body that carry an envelope sealed with the session keys."""
    kind, body = encryption.wrap_message(envelope)
    return f'{kind};protocol="{encryption.protocol}";boundary="Encrypted Boundary"', bytes(body)
