"""Stop on SIGTERM or SIGINT: the first finishes in-flight work, a second exits at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator

log = logging.getLogger("cmscan.daemon")


@contextlib.asynccontextmanager
async def signals_stop(stop: asyncio.Event) -> AsyncIterator[None]:
    """SIGTERM and SIGINT set `stop`; a second one exits at once."""
    loop = asyncio.get_running_loop()

    def handle(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(130)
        log.info("%s received: finishing in-flight probes", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, handle, signum)
    try:
        yield
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
