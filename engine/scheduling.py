"""When each host is next due: intervals by status, exponential backoff, jitter, scan windows."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from config.settings import ScheduleSettings
from config.windows import Window, parse_window
from store.model import Status

LONDON = ZoneInfo("Europe/London")  # NHS England works to UK time


@dataclass(frozen=True, slots=True)
class Schedule:
    """The scheduling policy; pure, so it can be tested without a clock or a database."""

    interval_compliant: timedelta
    interval_noncompliant: timedelta
    backoff_base: timedelta
    backoff_max: timedelta
    jitter: float = 0.0
    windows: tuple[Window, ...] = ()
    zone: ZoneInfo = LONDON

    @classmethod
    def from_settings(cls, settings: ScheduleSettings) -> Schedule:
        return cls(
            interval_compliant=settings.interval_compliant,
            interval_noncompliant=settings.interval_noncompliant,
            backoff_base=settings.backoff_base,
            backoff_max=settings.backoff_max,
            jitter=settings.jitter,
            windows=tuple(parse_window(w) for w in settings.windows),
            zone=ZoneInfo(settings.timezone),
        )

    def in_window(self, now: datetime) -> bool:
        """Whether scheduled scans may run now (always, when no windows are configured)."""
        if not self.windows:
            return True
        local = now.astimezone(self.zone)
        return any(window.contains(local) for window in self.windows)

    def interval(self, status: str, consecutive_failures: int) -> timedelta:
        """How long until the next scan of a host that just ended in `status`."""
        if status == Status.COMPLIANT:
            return self.interval_compliant
        if status == Status.NONCOMPLIANT:
            return self.interval_noncompliant
        exponent = max(consecutive_failures - 1, 0)
        # Cap the exponent too: 2**n overflows timedelta long before it matters.
        backoff = self.backoff_base * (1 << min(exponent, 30))
        return min(backoff, self.backoff_max)

    def next_due(
        self, *, now: datetime, status: str, consecutive_failures: int, rng: random.Random
    ) -> datetime:
        interval = self.interval(status, consecutive_failures)
        spread = interval.total_seconds() * self.jitter
        return now + interval + timedelta(seconds=rng.uniform(-spread, spread))
