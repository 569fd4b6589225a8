"""A deployment campaign: every so often an engineer fixes a slice of the noncompliant hosts."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Sequence
from datetime import datetime

import httpx

from scanner.demo.fleet import DemoFleet

log = logging.getLogger("cmscan.demo")

# What an IT team rolls out, in the order a campaign would: install, then reboot to finish.
STEPS: tuple[tuple[str, str], ...] = (
    ("install-cm-4.1", "installed NHS Credential Management 4.1"),
    ("reboot", "rebooted machines waiting to finish installs"),
    ("install-middleware", "installed the IDEMIA smartcard middleware"),
    ("install-dotnet-4.8", "installed .NET Framework 4.8"),
    ("reboot", "rebooted machines waiting to finish installs"),
    ("remove-identity-agent", "removed old NHS Identity Agents"),
    ("enable-smartcard-service", "re-enabled the Smart Card service"),
    ("allow-localhost-cookies", "allowed [*.]localhost cookies in browser policy"),
)


class Campaign:
    """Every `every` seconds, one step on a share of one CCG's hosts that need it."""

    def __init__(
        self, fleet: DemoFleet, ccgs: Sequence[str], *, every: float, share: float = 0.4
    ) -> None:
        self.fleet = fleet
        self.ccgs = list(ccgs)
        self.every = every
        self.share = share
        self.events: deque[str] = deque(maxlen=4)
        self.changed = 0

    async def run(self) -> None:
        steps = itertools.cycle(STEPS)
        ccgs = itertools.cycle(self.ccgs)
        while True:
            await asyncio.sleep(self.every)
            action, summary = next(steps)
            ccg = next(ccgs)
            try:
                changed = await self.fleet.act(action, ccg=ccg, fraction=self.share)
            except httpx.HTTPError as exc:
                log.warning("campaign step %s failed: %s", action, exc)
                continue
            if changed:
                self.changed += len(changed)
                stamp = datetime.now().strftime("%H:%M:%S")
                self.events.append(f"{stamp} {summary} on {len(changed)} host(s) in CCG {ccg}")
