"""The HTTP listener of the daemon and `cmscan metrics serve`: health, readiness, /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from scanner import __version__, db
from scanner.config import Settings


@dataclass
class HttpContext:
    """What the HTTP side may read: the database and the process's metrics registry."""

    database: db.Database
    settings: Settings
    registry: CollectorRegistry


def build_app(context: HttpContext) -> FastAPI:
    app = FastAPI(title="cmscan", version=__version__, docs_url=None, redoc_url=None)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        """Ready: the database answers and its schema is current."""
        try:
            await context.database.ping()
            revision = await asyncio.to_thread(db.current_revision, context.database.url)
        except db.DatabaseError as exc:
            return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
        if revision != db.head_revision():
            reason = f"schema at {revision}, expected {db.head_revision()}: run cmscan db upgrade"
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body = await asyncio.to_thread(generate_latest, context.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return app


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside a process that handles its own signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ListenError(OSError):
    """The listener cannot bind; the message says where and why."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, so that a busy port is reported before anything else starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


async def serve(app: FastAPI, sock: socket.socket, stop: asyncio.Event) -> None:
    """Serve `app` on `sock` until `stop` is set."""
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopper.cancel()
    await task
