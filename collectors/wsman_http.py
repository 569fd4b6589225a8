"""One WS-Management HTTP connection to one host: authentication, message sealing, bounded replies.

WinRM authenticates a connection, not a request (NTLM, Kerberos), so a probe keeps exactly
one keep-alive connection (httpcore's `AsyncHTTPConnection`, no pool to hand it elsewhere)
and every envelope after the handshake travels on it. Over HTTP every envelope is sealed
with the session key; over HTTPS, TLS already protects it and the handshake carries the
first envelope, saving a round trip.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import httpcore
import spnego
import spnego.channel_bindings
from cryptography import x509
from spnego._ntlm_raw.crypto import ntowfv1  # the NT hash, MD4 of UTF-16

from collectors.http_streams import BACKEND
from collectors.wsman_sealing import SOAP_TYPE, is_sealed, seal, sealed_protocol, unseal

# The auth methods this connection speaks; CredSSP and certificates take pypsrp's path.
SESSION_AUTH = ("negotiate", "ntlm", "kerberos")
# What the Authorization header names for each (Windows answers in the same scheme).
_SCHEMES = {"negotiate": "Negotiate", "ntlm": "Negotiate", "kerberos": "Kerberos"}
# RFC 5929: the certificate's signature hash, except that MD5 and SHA-1 become SHA-256.
_BINDING_HASHES = {"sha384": "sha384", "sha512": "sha512"}


class AuthRejectedError(Exception):
    """The host answered 401 to the credentials themselves (not to the handshake's first leg)."""


class HTTPStatusError(Exception):
    """The host answered with an HTTP status WS-Management does not use for replies."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class ReplyTooLargeError(Exception):
    """The host's reply exceeded what this client asked it to send at most."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to connect: the dialled address, the host's name, and its TLS context."""

    dial: str
    port: int
    hostname: str  # the inventory's name: the SPN, SNI and certificate check use it
    path: str = "wsman"
    tls: ssl.SSLContext | None = None  # None: plain HTTP with message encryption

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        host = f"[{self.dial}]" if ":" in self.dial else self.dial
        return f"{scheme}://{host}:{self.port}/{self.path.strip('/')}"


@dataclass(frozen=True, slots=True)
class Login:
    """Who authenticates, and how: no password means the ambient Kerberos credentials."""

    auth: str
    username: str | None
    password: str | None
    service: str = "WSMAN"


class WSManConnection:
    """Posts envelopes to one host over one authenticated connection."""

    def __init__(
        self,
        endpoint: Endpoint,
        login: Login,
        *,
        connect_timeout: float,
        max_reply_bytes: int,
        on_authenticated: Callable[[], None] | None = None,
    ) -> None:
        if login.auth not in (*SESSION_AUTH, "basic"):
            raise ValueError(f"unsupported WinRM authentication {login.auth!r}")
        self.endpoint = endpoint
        self.answered = False  # whether the host has sent any HTTP response yet
        self.connected = False  # whether TCP connected (TLS may still have hung)
        self._login = login
        self._on_authenticated = on_authenticated
        self._sealing = endpoint.tls is None and login.auth != "basic"
        self._max_reply = max_reply_bytes
        self._timeouts = {"connect": connect_timeout, "read": None, "write": None, "pool": None}
        scheme = b"https" if endpoint.tls is not None else b"http"
        self._origin = httpcore.Origin(scheme, endpoint.dial.encode("ascii"), endpoint.port)
        self._url = httpcore.URL(endpoint.url)
        self._host_header = self._url.host + b":" + str(endpoint.port).encode("ascii")
        self._connection = httpcore.AsyncHTTPConnection(
            self._origin, ssl_context=endpoint.tls, keepalive_expiry=None, network_backend=BACKEND
        )
        self._context: spnego.ContextProxy | None = None
        self._bindings: spnego.channel_bindings.GssChannelBindings | None = None

    async def post(self, envelope: bytes) -> tuple[int, bytes]:
        """Send one envelope; the status (200 or 500, a fault) and the reply's envelope."""
        if self._login.auth == "basic":
            answer = await self._exchange(envelope, self._basic_header())
            self._accepted()
            return answer
        if self._context is None or not self._context.complete:
            status, reply = await self._handshake(envelope)
            if not self._sealing:
                return status, reply
        if not self._sealing:
            return await self._exchange(envelope, None)
        assert self._context is not None
        content_type, body = seal(self._context, envelope, sealed_protocol(self._login.auth))
        return await self._exchange(body, None, content_type=content_type)

    async def aclose(self) -> None:
        await self._connection.aclose()

    # --- authentication -------------------------------------------------------------------

    async def _handshake(self, envelope: bytes) -> tuple[int, bytes]:
        """Authenticate the connection; without sealing the last leg carries `envelope`."""
        login = self._login
        options = (
            spnego.NegotiateOptions.wrapping_winrm
            if self._sealing
            else spnego.NegotiateOptions.none
        )
        self._context = context = spnego.client(
            _credentials(login.auth, login.username, login.password),
            hostname=self.endpoint.hostname,
            service=login.service,
            protocol=login.auth,
            options=options,
        )
        scheme = _SCHEMES[login.auth]
        token = context.step()
        # With sealing the handshake posts nothing: the envelope needs the finished session.
        body = b"" if self._sealing else envelope
        while True:
            header = f"{scheme} {base64.b64encode(token or b'').decode('ascii')}"
            status, reply, challenge = await self._request(body, header, SOAP_TYPE)
            incoming = _token(challenge, scheme)
            if status == 401 and (incoming is None or context.complete):
                raise AuthRejectedError
            if incoming is not None:
                token = context.step(incoming, channel_bindings=self._bindings)
            if status != 401:
                if not context.complete:
                    raise AuthRejectedError  # the host let us in without finishing the exchange
                self._accepted()
                return self._checked(status, reply)
            if token is None:
                raise AuthRejectedError

    def _accepted(self) -> None:
        """The host took the credentials: say so once, whatever the rest of the probe does."""
        if self._on_authenticated is not None:
            callback, self._on_authenticated = self._on_authenticated, None
            callback()

    def _basic_header(self) -> str:
        credentials = f"{self._login.username or ''}:{self._login.password or ''}"
        return "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")

    # --- HTTP -----------------------------------------------------------------------------

    async def _exchange(
        self, body: bytes, authorization: str | None, *, content_type: str = SOAP_TYPE
    ) -> tuple[int, bytes]:
        status, reply, _ = await self._request(body, authorization, content_type)
        if status == 401:
            raise AuthRejectedError
        return self._checked(status, reply)

    def _checked(self, status: int, reply: bytes) -> tuple[int, bytes]:
        if status not in (200, 500):
            raise HTTPStatusError(status)
        return status, reply

    async def _request(
        self, body: bytes, authorization: str | None, content_type: str
    ) -> tuple[int, bytes, str]:
        headers = [
            (b"Host", self._host_header),
            (b"Content-Type", content_type.encode("ascii")),
            (b"Content-Length", str(len(body)).encode("ascii")),
            (b"User-Agent", b"cmscan"),
        ]
        if authorization is not None:
            headers.append((b"Authorization", authorization.encode("ascii")))
        extensions: dict[str, object] = {
            "timeout": self._timeouts,
            "sni_hostname": self.endpoint.hostname,
        }
        if not self.connected:
            extensions["trace"] = self._trace
        request = httpcore.Request(
            b"POST", self._url, headers=headers, content=body, extensions=extensions
        )
        response = await self._connection.handle_async_request(request)
        try:
            self.answered = True
            if self._bindings is None and self.endpoint.tls is not None:
                self._bindings = _tls_bindings(response)
            data = bytearray()
            async for chunk in response.aiter_stream():
                data += chunk
                if len(data) > self._max_reply:
                    raise ReplyTooLargeError(f"a reply larger than {self._max_reply} bytes")
        finally:
            await response.aclose()
        headers_of = _headers(response.headers)
        challenge = headers_of.get("www-authenticate", "")
        reply_type = headers_of.get("content-type", "")
        if response.status in (200, 500) and self._sealing and is_sealed(reply_type):
            assert self._context is not None
            return response.status, unseal(self._context, bytes(data), reply_type), challenge
        return response.status, bytes(data), challenge

    async def _trace(self, event: str, info: dict[str, object]) -> None:
        # Only until connected: a host that accepts TCP and never finishes TLS is one that
        # "accepted the connection but never answered", not an unreachable one.
        if event == "connection.connect_tcp.complete":
            self.connected = True


@functools.lru_cache(maxsize=64)
def _credentials(
    auth: str, username: str | None, password: str | None
) -> list[spnego.Credential] | None:
    """What spnego authenticates with, worked out once per account rather than per probe.

    NTLM gets the NT hash, so spnego does not derive it (and the LM hash, in pure-Python
    DES) for every probe; the hash opens the account as the password does, so it lives
    only here in memory, as the password does, and neither has a repr.
    """
    if username is None:
        return None  # the ambient Kerberos credentials
    if password is None:
        return [spnego.CredentialCache(username=username)]
    hashed = spnego.NTLMHash(username=username, nt_hash=ntowfv1(password).hex())
    typed = spnego.Password(username=username, password=password)
    if auth == "ntlm":
        return [hashed]
    if auth == "kerberos":
        return [typed]
    # Negotiate: Kerberos takes the password, NTLM the hash (the first that suits it).
    return [hashed, typed]


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    # Several WWW-Authenticate headers are joined, as RFC 9110 allows.
    joined: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        joined[key] = f"{joined[key]}, {text}" if key in joined else text
    return joined


def _token(challenge: str, scheme: str) -> bytes | None:
    match = re.search(rf"(?:^|,)\s*{scheme}\s+([A-Za-z0-9+/=]+)", challenge, re.IGNORECASE)
    if match is None:
        return None
    try:
        return base64.b64decode(match.group(1), validate=True)
    except ValueError:
        return None


def _tls_bindings(response: httpcore.Response) -> spnego.channel_bindings.GssChannelBindings | None:
    """RFC 5929 tls-server-end-point: binds NTLM/Kerberos to this TLS session (EPA)."""
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    certificate = ssl_object.getpeercert(True) if ssl_object is not None else None
    if not certificate:
        return None
    digest = _certificate_hash(certificate)
    return spnego.channel_bindings.GssChannelBindings(
        application_data=b"tls-server-end-point:" + digest
    )


def _certificate_hash(der: bytes) -> bytes:
    algorithm = x509.load_der_x509_certificate(der).signature_hash_algorithm
    name = _BINDING_HASHES.get(algorithm.name if algorithm is not None else "", "sha256")
    return hashlib.new(name, der).digest()
