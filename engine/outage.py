"""Database outages: log once when the database goes away and once when it returns."""

from __future__ import annotations

import logging
import time

from engine.telemetry import Telemetry
from store.db import describe_error

log = logging.getLogger("cmscan.database")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0


class Outage:
    """Shared by every task that talks to the database, so an outage is one log line."""

    def __init__(self, url: str, telemetry: Telemetry) -> None:
        self.url = url
        self.telemetry = telemetry
        self.since: float | None = None
        self._delay = BACKOFF_FIRST

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException, *, doing: str) -> float:
        """Record a failed database operation; returns how long to wait before retrying."""
        self.telemetry.db_errors.inc()
        if self.since is None:
            self.since = time.monotonic()
            log.error(
                "database unavailable while %s: %s; retrying with backoff, finished scans are"
                " held in memory",
                doing,
                describe_error(exc, self.url),
            )
        delay = self._delay
        self._delay = min(self._delay * 2, BACKOFF_MAX)
        return delay

    def succeeded(self) -> None:
        if self.since is not None:
            log.warning("database available again after %.0f s", time.monotonic() - self.since)
        self.since = None
        self._delay = BACKOFF_FIRST
