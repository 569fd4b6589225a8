"""A scripted collector for engine tests (integration tests use the real simulator)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from collectors.base import Outcome, ScanResult, Target, Timeouts
from collectors.credentials import Credentials
from tests.daemon.facts_samples import ready

Script = Callable[[Target], ScanResult]


def answer_ready(target: Target) -> ScanResult:
    return ScanResult(Outcome.OK, transport=target.transport, duration_s=0.01, facts=ready())


class FakeCollector:
    """Answers from a script after a delay, and remembers whom it contacted and how many at once."""

    name = "fake"

    def __init__(self, script: Script = answer_ready, *, delay: float = 0.0) -> None:
        self.script = script
        self.delay = delay
        self.contacted: list[str] = []
        self.running: dict[str, int] = {}
        self.peak_total = 0
        self.peak_site: dict[str, int] = {}

    async def collect(
        self, target: Target, credentials: Credentials, timeouts: Timeouts
    ) -> ScanResult:
        self.contacted.append(target.hostname)
        site = target.hostname.split("-")[0]
        self.running[site] = self.running.get(site, 0) + 1
        self.peak_site[site] = max(self.peak_site.get(site, 0), self.running[site])
        self.peak_total = max(self.peak_total, sum(self.running.values()))
        try:
            await asyncio.sleep(self.delay)
            return self.script(target)
        finally:
            self.running[site] -= 1

    async def aclose(self) -> None:
        pass
