"""A small asyncio HTTP/1.1 server (h11) for thousands of mostly idle WinRM listeners.

No task runs per connection while it is idle, TLS starts lazily on accepted sockets, and the
server can misbehave as the simulated fleet needs: never answer, or reset mid-response.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import h11

log = logging.getLogger(__name__)

SERVER_HEADER = ("Server", "Microsoft-HTTPAPI/2.0")
# HTTP.sys closes idle keep-alive connections after two minutes.
IDLE_TIMEOUT = 120.0
TLS_HANDSHAKE_TIMEOUT = 30.0
# Requests larger than this are refused before they are buffered any further.
MAX_BODY = 2 * 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
# How long a reset connection lets the first half of its response travel before the RST.
RESET_DELAY = 0.05
# How long a refused request's remaining input is read and dropped before the socket closes.
LINGER = 2.0


@dataclass(slots=True)
class HTTPRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    peer: str
    tls: bool

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(slots=True)
class HTTPResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    close: bool = False
    # Send the head and part of the body, then reset the connection (a broken host).
    reset_midway: bool = False


class Connection:
    """Per-connection state the request handler may keep (authentication lives here)."""

    def __init__(self, peer: str, tls: bool) -> None:
        self.peer = peer
        self.tls = tls
        self.state: dict[str, Any] = {}


# Returns the response, or None to leave the client waiting forever (a black hole).
Handler = Callable[[HTTPRequest, Connection], Awaitable[HTTPResponse | None]]


class Site:
    """What a listener serves: the handler, the host's current fault, and its TLS context."""

    def __init__(
        self,
        handler: Handler,
        *,
        black_hole: Callable[[], bool],
        refuse: Callable[[], bool],
        tls_context: Callable[[], ssl.SSLContext] | None,
    ) -> None:
        self.handler = handler
        self.black_hole = black_hole
        self.refuse = refuse
        self.tls_context = tls_context
        self.connections: set[HTTPProtocol] = set()


class HTTPProtocol(asyncio.Protocol):
    """One accepted connection."""

    def __init__(self, site: Site, *, tls: bool) -> None:
        self._site = site
        self._tls = tls
        self._transport: asyncio.Transport | None = None
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self._request: h11.Request | None = None
        self._body = bytearray()
        self._task: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._discarding = False
        self._closed = False
        self._connection: Connection | None = None

    # --- asyncio callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._site.connections.add(self)
        peer = transport.get_extra_info("peername")
        self._connection = Connection(str(peer[0]) if peer else "", self._tls)
        if self._site.refuse():
            _reset(transport)
            return
        if self._site.black_hole():
            # Accept, never answer (not even the TLS handshake); read only to notice EOF.
            self._discarding = True
            return
        if self._tls:
            transport.pause_reading()
            self._task = asyncio.get_running_loop().create_task(self._start_tls(transport))
            return
        self._arm_idle_timer()

    def data_received(self, data: bytes) -> None:
        if self._discarding or self._closed:
            return
        self._cancel_idle_timer()
        try:
            self._h11.receive_data(data)
        except h11.RemoteProtocolError:
            self._abort()
            return
        if self._task is None:
            self._next_request()

    def eof_received(self) -> bool | None:
        if self._discarding or self._task is not None:
            self._close()
            return None
        with contextlib.suppress(h11.RemoteProtocolError):
            self._h11.receive_data(b"")
        self._close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._cancel_idle_timer()
        self._site.connections.discard(self)
        if self._task is not None and not self._task.done():
            self._task.cancel()

    # --- request handling --------------------------------------------------------------

    def _next_request(self) -> None:
        """Advance h11 until a whole request is in, then hand it to the handler."""
        while not self._closed:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError:
                self._reply_and_close(HTTPResponse(400, [("Connection", "close")]))
                return
            if event is h11.NEED_DATA:
                # Idle between requests, or stalled half way through one: both time out.
                self._arm_idle_timer()
                return
            if event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._request = event
                self._body = bytearray()
                declared = _content_length(event)
                if declared is not None and declared > MAX_BODY:
                    self._reply_and_close(HTTPResponse(413, [("Connection", "close")]))
                    return
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > MAX_BODY:
                    self._reply_and_close(HTTPResponse(413, [("Connection", "close")]))
                    return
            elif isinstance(event, h11.EndOfMessage):
                request = self._finish_request()
                self._task = asyncio.get_running_loop().create_task(self._respond(request))
                return
            elif isinstance(event, h11.ConnectionClosed):
                self._close()
                return

    def _finish_request(self) -> HTTPRequest:
        assert self._request is not None
        assert self._connection is not None
        headers: dict[str, str] = {}
        for name, value in self._request.headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        request = HTTPRequest(
            method=self._request.method.decode("ascii", errors="replace"),
            target=self._request.target.decode("latin-1"),
            headers=headers,
            body=bytes(self._body),
            peer=self._connection.peer,
            tls=self._tls,
        )
        self._request = None
        self._body = bytearray()
        return request

    async def _respond(self, request: HTTPRequest) -> None:
        assert self._connection is not None
        try:
            response = await self._site.handler(request, self._connection)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("simulated WinRM endpoint failed on a request")
            response = HTTPResponse(500, close=True)
        if response is None:
            self._discarding = True  # the host stopped answering: swallow whatever follows
            self._task = None
            return
        self._task = None
        self._write(response)
        if self._closed or self._discarding:
            return
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()
            self._next_request()
        elif self._h11.our_state is h11.MUST_CLOSE or self._h11.their_state is h11.MUST_CLOSE:
            self._close()

    def _write(self, response: HTTPResponse) -> None:
        transport = self._transport
        if transport is None or self._closed:
            return
        headers = [
            SERVER_HEADER,
            ("Date", email.utils.formatdate(usegmt=True)),
            *response.headers,
            ("Content-Length", str(len(response.body))),
        ]
        if response.close:
            headers.append(("Connection", "close"))
        try:
            head = self._h11.send(h11.Response(status_code=response.status, headers=headers))
            if response.reset_midway:
                transport.write((head or b"") + response.body[: len(response.body) // 2])
                self._discarding = True
                loop = asyncio.get_running_loop()
                loop.call_later(RESET_DELAY, _reset, transport)
                return
            data = self._h11.send(h11.Data(data=response.body)) if response.body else b""
            end = self._h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            self._abort()
            return
        transport.write((head or b"") + (data or b"") + (end or b""))
        if response.close:
            self._close()

    def _reply_and_close(self, response: HTTPResponse) -> None:
        """Answer a request that will not be read, then close without resetting the client.

        Closing at once would reset a client still sending its body before it reads the
        answer; so the rest of its input is discarded for a moment first (a lingering close).
        """
        if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            self._write(response)
        self._discarding = True
        self._cancel_idle_timer()
        self._idle = asyncio.get_running_loop().call_later(LINGER, self._close)

    # --- TLS ---------------------------------------------------------------------------

    async def _start_tls(self, transport: asyncio.Transport) -> None:
        assert self._site.tls_context is not None
        loop = asyncio.get_running_loop()
        try:
            context = self._site.tls_context()
            upgraded = await loop.start_tls(
                transport,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT,
            )
        except asyncio.CancelledError:
            transport.abort()
            raise
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError, RuntimeError) as exc:
            # A client that distrusts the certificate hangs up during the handshake.
            log.debug(
                "TLS handshake with %s failed: %s", self._connection and self._connection.peer, exc
            )
            transport.abort()
            self._closed = True
            self._site.connections.discard(self)
            self._task = None
            return
        self._task = None
        if upgraded is None:
            transport.abort()
            return
        self._transport = upgraded
        # The client's first request may already have arrived while the handshake finished.
        self._next_request()

    # --- closing -----------------------------------------------------------------------

    def _arm_idle_timer(self) -> None:
        self._cancel_idle_timer()
        if not self._closed:
            self._idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self._close)

    def _cancel_idle_timer(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _close(self) -> None:
        if self._transport is not None and not self._closed:
            self._closed = True
            self._transport.close()

    def _abort(self) -> None:
        if self._transport is not None:
            self._closed = True
            self._transport.abort()

    def shut(self) -> None:
        """Drop the connection now (the endpoint is closing)."""
        self._cancel_idle_timer()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._abort()


def _reset(transport: asyncio.Transport) -> None:
    """Close with RST rather than FIN, as a crashing host or a middlebox would."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _content_length(request: h11.Request) -> int | None:
    for name, value in request.headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def listen(site: Site, address: str, port: int, *, tls: bool) -> asyncio.Server:
    """Listen on address:port (0 for an ephemeral port) and serve `site` there."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # A host powered off and on again must get its port back at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(128)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: HTTPProtocol(site, tls=tls), sock=sock)
    except BaseException:
        sock.close()
        raise
