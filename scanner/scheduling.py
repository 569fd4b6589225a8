"""When each host is next due: intervals by status, exponential backoff, jitter, scan windows."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from scanner.model import Status

if TYPE_CHECKING:
    from scanner.config import ScheduleSettings

LONDON = ZoneInfo("Europe/London")  # NHS England works to UK time
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(
    r"^\s*(?P<days>[A-Za-z,\- ]+?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)


@dataclass(frozen=True, slots=True)
class Window:
    """Days of the week (0 = Monday) and a local time range; end <= start wraps past midnight."""

    days: frozenset[int]
    start: time
    end: time | None  # None: until midnight ("24:00")

    def contains(self, local: datetime) -> bool:
        moment = local.time()
        if self.end is None:
            return local.weekday() in self.days and moment >= self.start
        if self.start < self.end:
            return local.weekday() in self.days and self.start <= moment < self.end
        # Overnight: the part after midnight belongs to the previous day's window.
        if moment >= self.start:
            return local.weekday() in self.days
        return moment < self.end and (local.weekday() - 1) % 7 in self.days


def _day(name: str, text: str) -> int:
    key = name.strip().lower()[:3]
    if key not in _DAYS:
        raise ValueError(f"{text!r}: {name.strip()!r} is not a day (Mon, Tue, ... Sun)")
    return _DAYS.index(key)


def _clock(value: str, text: str) -> time | None:
    hours, minutes = (int(part) for part in value.split(":"))
    if (hours, minutes) == (24, 0):
        return None
    if hours > 23 or minutes > 59:
        raise ValueError(f"{text!r}: {value} is not a time of day")
    return time(hours, minutes)


def parse_window(text: str) -> Window:
    """Parse 'Mon-Fri 08:00-18:30', 'Sat,Sun 09:00-12:00' or 'Daily 22:00-06:00'."""
    match = _WINDOW.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a scan window; write e.g. 'Mon-Fri 08:00-18:30'")
    days: set[int] = set()
    for part in match["days"].replace(" ", "").split(","):
        if part.lower() in ("daily", "everyday", "all"):
            days.update(range(7))
        elif "-" in part:
            first, last = (_day(p, text) for p in part.split("-", 1))
            days.update(
                range(first, last + 1) if first <= last else [*range(first, 7), *range(last + 1)]
            )
        else:
            days.add(_day(part, text))
    start = _clock(match["start"], text)
    if start is None:
        raise ValueError(f"{text!r}: a window cannot start at 24:00")
    end = _clock(match["end"], text)
    if end == start:
        raise ValueError(f"{text!r}: the window is empty")
    return Window(frozenset(days), start, end)


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
