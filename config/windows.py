"""Scan windows: the 'Mon-Fri 08:00-18:30' format settings are written in, and what it contains."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time

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
