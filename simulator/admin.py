"""Changing a running fleet (installs, reboots, faults, power) from Python or over loopback HTTP."""

from __future__ import annotations

import hmac
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from simulator.behaviour import Fault
from simulator.fleet import Fleet, SimHost
from simulator.profiles import ACTIONS, transition


class Selection(BaseModel):
    """Which hosts a change is for: every given filter must match; `fraction` (or `count`) of
    the matching hosts is then chosen, reproducibly from the fleet's seed (or `seed`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hostnames: tuple[str, ...] | None = None
    practice: str | None = None
    pcn: str | None = None
    ccg: str | None = None
    icb: str | None = None
    profile: str | None = None
    fraction: float = Field(default=1.0, gt=0.0, le=1.0)
    count: int | None = Field(default=None, ge=1)
    seed: int | None = None

    def matches(self, host: SimHost) -> bool:
        practice = host.practice
        return (
            (self.hostnames is None or host.hostname in {h.casefold() for h in self.hostnames})
            and (self.practice is None or practice.code == self.practice.upper())
            and (self.pcn is None or practice.pcn == self.pcn.upper())
            and (self.ccg is None or practice.ccg == self.ccg.upper())
            and (self.icb is None or practice.icb == self.icb.upper())
            and (self.profile is None or host.profile.name == self.profile)
        )


class SelectionError(ValueError):
    """A selection names something the fleet does not have."""


@dataclass
class Change:
    """What one change did, host by host."""

    change: str
    changed: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"change": self.change, "changed": self.changed, "unchanged": self.unchanged}


# The runner supplies these: one re-aligns a host's listeners with its state, one rewrites
# sim.json.
Refresh = Callable[[SimHost], Awaitable[None]]
Publish = Callable[[], None]


class FleetAdmin:
    """Run-time changes to a fleet. Call from the fleet's event loop."""

    def __init__(self, fleet: Fleet, *, refresh: Refresh, publish: Publish) -> None:
        self.fleet = fleet
        self._refresh = refresh
        self._publish = publish
        self._changes = 0

    def select(self, selection: Selection, eligible: Callable[[SimHost], bool]) -> list[SimHost]:
        """The hosts a selection picks among those `eligible`."""
        if selection.hostnames is not None:
            known = {h.hostname for h in self.fleet}
            unknown = sorted({n.casefold() for n in selection.hostnames} - known)
            if unknown:
                raise SelectionError(f"no such host(s): {', '.join(unknown[:10])}")
        for kind, value, codes in (
            ("practice", selection.practice, self.fleet.practices),
            ("PCN", selection.pcn, self.fleet.pcns),
            ("CCG", selection.ccg, self.fleet.ccgs),
            ("ICB", selection.icb, self.fleet.icbs),
        ):
            if value is not None and value.upper() not in codes:
                raise SelectionError(f"the fleet has no {kind} {value!r}")
        candidates = [h for h in self.fleet if selection.matches(h) and eligible(h)]
        self._changes += 1
        salt = self._changes if selection.seed is None else selection.seed
        rng = random.Random(f"{self.fleet.options.seed}/change/{salt}")
        wanted = selection.count or math.ceil(selection.fraction * len(candidates) - 1e-9)
        chosen = rng.sample(candidates, min(wanted, len(candidates)))
        return sorted(chosen, key=lambda h: h.hostname)

    async def apply(self, action: str, selection: Selection) -> Change:
        """Make an administrator's change (see profiles.ACTIONS) on the selected hosts that are
        switched on and where it leads to a declared profile; the rest are left as they are."""
        if action not in ACTIONS:
            raise SelectionError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
        report = Change(action)
        matching = [h for h in self.fleet if selection.matches(h)]

        def eligible(host: SimHost) -> bool:
            target = transition(host.profile, action)
            return host.powered_on and target is not None and target is not host.profile

        for host in self.select(selection, eligible):
            target = transition(host.profile, action)
            assert target is not None
            report.changed.append(
                {"hostname": host.hostname, "before": host.profile.name, "after": target.name}
            )
            host.profile = target
        chosen = {c["hostname"] for c in report.changed}
        for host in matching:
            if host.hostname in chosen:
                continue
            report.unchanged.append({"hostname": host.hostname, "reason": _why_not(host, action)})
        self._publish()
        return report

    async def set_fault(self, fault: Fault | None, selection: Selection) -> Change:
        """Give the selected hosts a fault (None clears it); listeners follow at once."""
        report = Change(f"fault {fault}" if fault else "clear fault")
        for host in self.select(selection, lambda h: h.fault is not fault):
            report.changed.append(
                {
                    "hostname": host.hostname,
                    "before": None if host.fault is None else str(host.fault),
                    "after": None if fault is None else str(fault),
                }
            )
            host.fault = fault
            await self._refresh(host)
        self._publish()
        return report

    async def power_off(self, selection: Selection) -> Change:
        return await self.set_fault(Fault.POWERED_OFF, selection)

    async def power_on(self, selection: Selection) -> Change:
        """Switch on the selected hosts that are off; other faults stay as they are."""
        report = Change("power on")
        for host in self.select(selection, lambda h: not h.powered_on):
            report.changed.append({"hostname": host.hostname, "before": "off", "after": "on"})
            host.fault = None
            await self._refresh(host)
        self._publish()
        return report

    async def reboot(self, selection: Selection) -> Change:
        return await self.apply("reboot", selection)


def _why_not(host: SimHost, action: str) -> str:
    if not host.powered_on:
        return "powered off"
    target = transition(host.profile, action)
    if target is None:
        return f"no declared profile for {host.profile.name} after {action}"
    if target is host.profile:
        return "already done"
    return "not chosen"


# -- HTTP ---------------------------------------------------------------------------------------


class FaultRequest(Selection):
    fault: Fault | None = None


def admin_app(admin: FleetAdmin, token: str, manifest: Callable[[], dict[str, Any]]) -> FastAPI:
    """The admin API. Every request needs `Authorization: Bearer <token>`."""
    app = FastAPI(
        title="cmscan simulated fleet",
        description="Change simulated hosts while cmscan scans them.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    def authorised(request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(
                status_code=401,
                detail="a bearer token is required (admin_token in sim.json)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    guard = [Depends(authorised)]

    def checked(call: Awaitable[Change]) -> Awaitable[dict[str, Any]]:
        async def run() -> dict[str, Any]:
            try:
                return (await call).as_dict()
            except SelectionError as exc:
                raise HTTPException(status_code=400, detail=str(exc)) from None

        return run()

    @app.get("/v1/hosts", dependencies=guard)
    async def hosts() -> list[dict[str, Any]]:
        """Every host with its profile, fault and expected verdict (as in sim.json)."""
        return list(manifest()["hosts"])

    @app.get("/v1/actions", dependencies=guard)
    async def actions() -> dict[str, str]:
        """The changes an administrator can make, by name."""
        return {name: a.summary for name, a in ACTIONS.items()}

    @app.post("/v1/actions/{action}", dependencies=guard)
    async def act(action: str, selection: Selection) -> dict[str, Any]:
        """Make a change, e.g. install-cm-4.1 with {"ccg": "00K", "fraction": 0.3}."""
        if action not in ACTIONS:
            raise HTTPException(status_code=404, detail=f"unknown action {action!r}")
        return await checked(admin.apply(action, selection))

    @app.post("/v1/faults", dependencies=guard)
    async def fault(request: FaultRequest) -> dict[str, Any]:
        """Set a fault on hosts ({"fault": null} clears it)."""
        selection = Selection(**request.model_dump(exclude={"fault"}))
        return await checked(admin.set_fault(request.fault, selection))

    @app.post("/v1/power/{state}", dependencies=guard)
    async def power(state: str, selection: Selection) -> dict[str, Any]:
        """Switch hosts off or on."""
        if state == "off":
            return await checked(admin.power_off(selection))
        if state == "on":
            return await checked(admin.power_on(selection))
        raise HTTPException(status_code=404, detail="power state is off or on")

    return app
