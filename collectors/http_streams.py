"""httpcore's network backend on asyncio's own streams, for the WinRM path's one connection a probe.

httpcore's default backend goes through anyio, which wraps every read and write in cancel
scopes and looks up the current task each time: a fifth of a probe's HTTP cost. The probe
never needs anyio's portability (cmscan runs on asyncio only), so its connections use
asyncio's StreamReader and StreamWriter directly and raise the same httpcore exceptions,
chained to the OSError or ssl.SSLError behind them, as the anyio backend does.
"""

# The `timeout` parameters are httpcore's interface, not a choice made here.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
from httpcore._backends.base import SOCKET_OPTION  # the option tuple httpcore passes on

# What one read asks the kernel for at most; httpcore asks for 64 KiB.
_STREAM_LIMIT = 2**16


@contextlib.contextmanager
def _mapped(timeout: type[Exception], failure: type[Exception]) -> Iterator[None]:
    try:
        yield
    except TimeoutError as exc:
        raise timeout(str(exc) or "timed out") from exc
    except (OSError, ssl.SSLError, EOFError) as exc:
        raise failure(str(exc) or type(exc).__name__) from exc


class StreamConnection(httpcore.AsyncNetworkStream):
    """One TCP (or TLS) connection as httpcore sees it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _mapped(httpcore.ReadTimeout, httpcore.ReadError):
            if timeout is None:
                return await self._reader.read(max_bytes)
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        with _mapped(httpcore.WriteTimeout, httpcore.WriteError):
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()

    async def aclose(self) -> None:
        # Like httpcore's anyio backend (standard_compatible=False), no TLS close_notify is
        # awaited: the reply has been read in full, and a host that never answers the
        # shutdown must not hold the probe.
        transport = self._writer.transport
        if transport.get_extra_info("ssl_object") is not None:
            transport.abort()
        else:
            transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
                async with asyncio.timeout(timeout):
                    await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except BaseException:
            self._writer.transport.abort()
            raise
        return self

    def get_extra_info(self, info: str) -> Any:
        transport = self._writer.transport
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        if info == "is_readable":
            # Readable while idle means the host closed it (or sent what it should not).
            return self._reader.at_eof() or transport.is_closing()
        return None


class StreamBackend(httpcore.AsyncNetworkBackend):
    """Opens StreamConnections; holds no state, so one serves every probe."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=local, limit=_STREAM_LIMIT
                )
        raw: socket.socket | None = writer.transport.get_extra_info("socket")
        for option in socket_options or ():
            if raw is not None:
                raw.setsockopt(*option)
        return StreamConnection(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("WinRM is reached over TCP only")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


BACKEND = StreamBackend()
