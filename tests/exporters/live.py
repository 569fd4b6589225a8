"""The daemon's HTTP app served for real on loopback, from a thread with its own event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

import httpx
from prometheus_client import CollectorRegistry

from config.settings import Settings
from engine.telemetry import Telemetry
from exporters.http import HttpContext, bind, build_app, serve
from store import db


@contextmanager
def live_server(
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    registry: CollectorRegistry | None = None,
) -> Iterator[str]:
    """Serve build_app for `settings` on 127.0.0.1 (an ephemeral port); yield its base URL.

    The database engine is made inside the server's own loop, as the daemon makes it.
    """
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    process_registry = registry if registry is not None else Telemetry().registry
    started = threading.Event()
    state: dict[str, object] = {}

    async def main() -> None:
        stop = asyncio.Event()
        state["loop"], state["stop"] = asyncio.get_running_loop(), stop
        database = db.Database(settings.database_url)
        try:
            app = build_app(HttpContext(database, settings, process_registry, clock=clock))
            started.set()
            await serve(app, sock, stop)
        finally:
            await database.dispose()

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by the waiting test
            state["error"] = exc
            started.set()

    thread = threading.Thread(target=target, name="cmscan-test-http", daemon=True)
    thread.start()
    started.wait(30)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while "error" not in state:
        try:
            httpx.get(f"{base}/healthz", timeout=2)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    if "error" in state:
        raise RuntimeError("the test server did not start") from state["error"]  # type: ignore[misc]
    try:
        yield base
    finally:
        loop, stop = state["loop"], state["stop"]
        loop.call_soon_threadsafe(stop.set)  # type: ignore[attr-defined]
        thread.join(30)
        sock.close()
