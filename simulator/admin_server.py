"""The admin API's HTTP server on 127.0.0.1, run by uvicorn inside the fleet's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from simulator.run_options import FleetStartError

ADMIN_ADDRESS = "127.0.0.1"


class _UvicornWithoutSignals(uvicorn.Server):
    """uvicorn without its signal handling: whoever runs the fleet owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AdminServer:
    """Serves the admin API from the running loop, from `start` until `close`."""

    def __init__(self) -> None:
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, app: FastAPI, port: int) -> None:
        """Listen on 127.0.0.1:`port` (0: any free port) and return once requests are served."""
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self._server = server = _UvicornWithoutSignals(config)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ADMIN_ADDRESS, port))
        except OSError as exc:
            sock.close()
            raise FleetStartError(
                f"cannot listen for the admin API on {ADMIN_ADDRESS}:{port}: {exc.strerror}"
            ) from None
        self.url = f"http://{ADMIN_ADDRESS}:{sock.getsockname()[1]}"
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                self._task.result()
                raise FleetStartError("the admin API stopped while starting")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
