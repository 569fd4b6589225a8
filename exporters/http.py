"""The HTTP listener of the daemon and `cmscan metrics serve`: health, readiness, /metrics, API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import version

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from sqlalchemy.exc import InterfaceError, OperationalError

from config.settings import Settings
from exporters.api import build_router
from exporters.prometheus import DeploymentCollector
from store import db
from store.model import utcnow

log = logging.getLogger("cmscan.http")


@dataclass
class HttpContext:
    """What the HTTP side may read: the database and the process's metrics registry."""

    database: db.Database
    settings: Settings
    registry: CollectorRegistry
    clock: Callable[[], datetime] = field(default=utcnow)


class _Both(Collector):
    """The process's registry and the deployment collector, rendered as one exposition."""

    def __init__(self, process: CollectorRegistry, deployment: DeploymentCollector) -> None:
        self.process = process
        self.deployment = deployment

    def collect(self) -> Iterator[Metric]:
        yield from self.process.collect()
        yield from self.deployment.collect()


def _validation_errors(exc: RequestValidationError) -> list[dict[str, object]]:
    # Where and what, never the rejected input: it could be anything, of any size.
    return [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in exc.errors()
    ]


def build_app(context: HttpContext) -> FastAPI:
    app = FastAPI(
        title="cmscan",
        version=version("cmscan"),
        description="NHS smartcard readiness of Windows fleets: summary, hosts, rescans, exports.",
        docs_url=None,
        redoc_url=None,
    )
    deployment = DeploymentCollector(context.database, context.settings, clock=context.clock)
    app.state.deployment = deployment
    exposition = CollectorRegistry()
    exposition.register(_Both(context.registry, deployment))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_errors(exc)}, status_code=422)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(db.DatabaseError)
    async def database_down(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("API request failed: %s", db.describe_error(exc, context.database.url))
        return JSONResponse({"detail": "the database is unavailable"}, status_code=503)

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
        if revision != db.HEAD_REVISION:
            reason = f"schema at {revision}, expected {db.HEAD_REVISION}: run cmscan db upgrade"
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Process metrics and deployment figures (see exporters/prometheus.py)."""
        await deployment.prepare()
        body = await asyncio.to_thread(generate_latest, exposition)
        return Response(body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    app.include_router(build_router(context.database, context.settings, clock=context.clock))
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
    deployment = getattr(app.state, "deployment", None)
    if isinstance(deployment, DeploymentCollector):
        await deployment.aclose()  # before the caller closes the database under it
