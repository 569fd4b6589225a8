"""A fleet run in a background thread with its own event loop, for callers that block."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from simulator.admin import Change, Selection
from simulator.behaviour import Fault
from simulator.fleet import Fleet, build_fleet
from simulator.run_options import RunOptions
from simulator.runner import RunningFleet

T = TypeVar("T")


class FleetThread:
    """A fleet running in a background thread with its own event loop, for blocking callers
    (pypsrp, tests, benchmarks). Admin calls made here run in the fleet's loop."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._running: RunningFleet | None = None

    @property
    def running(self) -> RunningFleet:
        if self._running is None:
            raise RuntimeError("the fleet is not running")
        return self._running

    @property
    def fleet(self) -> Fleet:
        return self.running.fleet

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 120.0) -> T:
        """Run a coroutine in the fleet's loop and wait for its result."""

        async def wrapped() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(timeout)

    def start(self) -> FleetThread:
        self._thread.start()
        running = RunningFleet(self.options, build_fleet(self.options.fleet))
        try:
            self.call(running.start, timeout=600)
        except BaseException:
            self._stop_loop()
            raise
        self._running = running
        return self

    def stop(self) -> None:
        if self._running is not None:
            running, self._running = self._running, None
            self.call(running.close)
        self._stop_loop()

    def _stop_loop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        if not self._loop.is_running():
            self._loop.close()

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.running.files.manifest.read_text(encoding="utf-8"))
        return data

    def apply(self, action: str, **selection: Any) -> Change:
        admin = self.running.admin
        return self.call(lambda: admin.apply(action, Selection(**selection)))

    def set_fault(self, fault: Fault | None, **selection: Any) -> Change:
        admin = self.running.admin
        return self.call(lambda: admin.set_fault(fault, Selection(**selection)))

    def power_off(self, **selection: Any) -> Change:
        admin = self.running.admin
        return self.call(lambda: admin.power_off(Selection(**selection)))

    def power_on(self, **selection: Any) -> Change:
        admin = self.running.admin
        return self.call(lambda: admin.power_on(Selection(**selection)))

    def __enter__(self) -> FleetThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def fleet_in_thread(options: RunOptions) -> Iterator[FleetThread]:
    with FleetThread(options) as running:
        yield running
