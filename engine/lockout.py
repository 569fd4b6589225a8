"""The lockout guard: stop using a credential that keeps failing before AD locks the account."""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from collectors.base import Outcome
from store.suspensions import Suspension


class Admission(enum.Enum):
    ALLOW = "allow"  # go ahead and contact the host
    WAIT = "wait"  # the credential is on probation and its budget is in flight: try later
    SUSPENDED = "suspended"  # do not contact the host; record it as skipped


@dataclass(slots=True)
class _Profile:
    failures: deque[datetime] = field(default_factory=deque)
    proven: bool = False  # a success since start or resume: the password is known good
    in_flight: int = 0
    suspension: Suspension | None = None


class LockoutGuard:
    """Per credential profile, after `max_failures` authentication failures within `window`,
    stop using the profile.

    Counting failures is not enough: with hundreds of probes in flight, a wrong password
    would reach hundreds of hosts before the first failure comes back. So a profile with no
    success yet (or whose last probe failed authentication) is on probation: at most the
    remaining failure budget may be in flight at once. Once a host accepts the password (its
    collector says so as soon as the handshake ends) or a probe succeeds, the password is
    known good and probes run at full concurrency.
    """

    def __init__(self, *, max_failures: int, window: timedelta, cooldown: timedelta | None) -> None:
        self.max_failures = max_failures
        self.window = window
        self.cooldown = cooldown
        self._profiles: dict[str, _Profile] = {}

    def _state(self, profile: str) -> _Profile:
        return self._profiles.setdefault(profile, _Profile())

    def _expire(self, state: _Profile, now: datetime) -> None:
        while state.failures and state.failures[0] <= now - self.window:
            state.failures.popleft()
        suspension = state.suspension
        if suspension is not None and suspension.until is not None and now >= suspension.until:
            # The cool-down lifted it: start over on probation, not at full speed.
            state.suspension = None
            state.failures.clear()
            state.proven = False

    def admit(self, profile: str, now: datetime) -> Admission:
        """Ask to contact one host with `profile`; ALLOW counts it as in flight."""
        state = self._state(profile)
        self._expire(state, now)
        if state.suspension is not None:
            return Admission.SUSPENDED
        if not state.proven and state.in_flight + len(state.failures) >= self.max_failures:
            return Admission.WAIT
        state.in_flight += 1
        return Admission.ALLOW

    def authenticated(self, profile: str) -> bool:
        """A host accepted the profile's credentials mid-probe: the password is good, so end
        probation now. True if this ended it (the caller may claim again at full speed)."""
        state = self._state(profile)
        if state.suspension is not None:
            return False
        state.failures.clear()  # AD resets its bad-password count on a good logon
        was_proven, state.proven = state.proven, True
        return not was_proven

    def finished(self, profile: str, *, outcome: str, now: datetime) -> Suspension | None:
        """Report how an admitted probe ended; returns a new suspension when one starts."""
        state = self._state(profile)
        state.in_flight = max(state.in_flight - 1, 0)
        self._expire(state, now)
        if outcome == Outcome.OK:
            state.proven = True
            state.failures.clear()  # AD resets its bad-password count on a good logon too
            return None
        if outcome != Outcome.AUTH_FAILED:
            return None  # unreachable, timed out, broken: says nothing about the password
        state.proven = False
        state.failures.append(now)
        if state.suspension is None and len(state.failures) >= self.max_failures:
            state.suspension = Suspension(
                profile=profile,
                at=now,
                until=now + self.cooldown if self.cooldown else None,
                failures=len(state.failures),
                reason=(
                    f"{len(state.failures)} authentication failures within {self.window}:"
                    " stopped before the account is locked out"
                ),
            )
            return state.suspension
        return None

    def suspend(self, suspension: Suspension) -> None:
        """Adopt a suspension recorded elsewhere (another replica, an earlier run)."""
        self._state(suspension.profile).suspension = suspension

    def resume(self, profile: str) -> None:
        """Lift a suspension; the profile starts again on probation."""
        state = self._state(profile)
        state.suspension = None
        state.failures.clear()
        state.proven = False

    def suspended(self, now: datetime) -> dict[str, Suspension]:
        for state in self._profiles.values():
            self._expire(state, now)
        return {
            name: state.suspension
            for name, state in self._profiles.items()
            if state.suspension is not None
        }
