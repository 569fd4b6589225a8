"""Scheduling policy: intervals by status, backoff, jitter and scan windows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.windows import parse_window
from engine.scheduling import Schedule
from store.model import Status

SCHEDULE = Schedule(
    interval_compliant=timedelta(hours=24),
    interval_noncompliant=timedelta(hours=4),
    backoff_base=timedelta(minutes=30),
    backoff_max=timedelta(hours=8),
)


def test_intervals_by_status() -> None:
    assert SCHEDULE.interval(Status.COMPLIANT, 0) == timedelta(hours=24)
    assert SCHEDULE.interval(Status.NONCOMPLIANT, 0) == timedelta(hours=4)


@pytest.mark.parametrize(
    ("failures", "minutes"), [(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 480), (500, 480)]
)
def test_failures_back_off_exponentially_up_to_a_cap(failures: int, minutes: int) -> None:
    assert SCHEDULE.interval(Status.UNREACHABLE, failures) == timedelta(minutes=minutes)


def test_a_weekend_off_costs_a_handful_of_attempts() -> None:
    now, attempts, failures = datetime(2026, 11, 20, 18, tzinfo=UTC), 0, 0
    monday = datetime(2026, 11, 23, 8, tzinfo=UTC)
    while now < monday:
        failures += 1
        attempts += 1
        now += SCHEDULE.interval(Status.UNREACHABLE, failures)
    assert attempts <= 12


@given(st.floats(min_value=0, max_value=0.5), st.integers(min_value=0, max_value=2**32))
def test_jitter_stays_within_its_share(jitter: float, seed: int) -> None:
    schedule = Schedule(
        timedelta(hours=24),
        timedelta(hours=4),
        timedelta(minutes=30),
        timedelta(hours=8),
        jitter=jitter,
    )
    now = datetime(2026, 11, 24, tzinfo=UTC)
    due = schedule.next_due(
        now=now, status=Status.COMPLIANT, consecutive_failures=0, rng=random.Random(seed)
    )
    assert abs((due - now) - timedelta(hours=24)) <= timedelta(hours=24 * jitter, seconds=1)


@pytest.mark.parametrize(
    ("text", "days", "start", "end"),
    [
        ("Mon-Fri 08:00-18:30", {0, 1, 2, 3, 4}, time(8), time(18, 30)),
        ("Sat,Sun 9:00-12:00", {5, 6}, time(9), time(12)),
        ("Fri-Mon 22:00-06:00", {4, 5, 6, 0}, time(22), time(6)),
        ("Daily 00:00-24:00", set(range(7)), time(0), None),
    ],
)
def test_parse_windows(text: str, days: set[int], start: time, end: time | None) -> None:
    window = parse_window(text)
    assert (window.days, window.start, window.end) == (frozenset(days), start, end)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("weekdays", "is not a scan window"),
        ("Mon-Fry 08:00-18:00", "'Fry' is not a day"),
        ("Mon 25:00-26:00", "is not a time of day"),
        ("Mon 08:00-08:00", "empty"),
    ],
)
def test_bad_windows(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_window(text)


def test_windows_are_local_time_in_london() -> None:
    schedule = Schedule(
        timedelta(hours=24),
        timedelta(hours=4),
        timedelta(minutes=30),
        timedelta(hours=8),
        windows=(parse_window("Mon-Fri 08:00-18:00"),),
    )
    # 07:30 UTC in July is 08:30 in London (BST); in January it is 07:30 (GMT).
    assert schedule.in_window(datetime(2026, 7, 1, 7, 30, tzinfo=UTC))
    assert not schedule.in_window(datetime(2026, 1, 7, 7, 30, tzinfo=UTC))
    assert not schedule.in_window(datetime(2026, 7, 4, 12, tzinfo=UTC))  # a Saturday


def test_overnight_window_belongs_to_the_day_it_starts() -> None:
    schedule = Schedule(
        timedelta(hours=24),
        timedelta(hours=4),
        timedelta(minutes=30),
        timedelta(hours=8),
        windows=(parse_window("Fri 22:00-06:00"),),
    )
    assert schedule.in_window(datetime(2026, 1, 9, 23, tzinfo=UTC))  # Friday night
    assert schedule.in_window(datetime(2026, 1, 10, 5, tzinfo=UTC))  # early Saturday
    assert not schedule.in_window(datetime(2026, 1, 9, 5, tzinfo=UTC))  # early Friday


def test_no_windows_means_any_time() -> None:
    assert SCHEDULE.in_window(datetime(2026, 1, 10, 3, tzinfo=UTC))
