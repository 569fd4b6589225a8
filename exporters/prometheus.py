"""Deployment metrics per group (CCG by default), read from the database by a custom collector.

The numbers come from the database (docs/architecture.md, invariant 1), so every replica and
`cmscan metrics serve` expose the same figures. A refresh runs a handful of GROUP BY queries
in one read transaction and keeps the result as an immutable snapshot; `collect()` builds
fresh metric families from the latest snapshot and never touches the database itself.

Caching: a snapshot is reused for `metrics.cache`, or for ten times as long as the last
refresh took if that is longer, which keeps the metrics' share of database time small on
very large fleets. A scrape that finds the snapshot too old starts a refresh and waits for it
only briefly (SCRAPE_WAIT), or not at all when the last refresh took longer than that; it is
then served the previous snapshot and the next scrape gets the new one. A database that
cannot be read makes `cmscan_database_up` 0 and leaves the deployment series out, while the
process's own metrics are still served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from config.settings import Settings
from exporters.access_metrics import access_families
from policy import Policy, PolicyError
from policy.products import matcher
from policy.verdict import one_line
from store import db
from store.access import latest_import
from store.instances import live_instances
from store.model import utcnow
from store.policies import get_active_policy
from store.reports import figures, groups
from store.reports.access import GroupAccess, group_access

log = logging.getLogger("cmscan.metrics")

SCRAPE_WAIT = 0.15  # seconds a scrape waits for a refresh when it has older figures to serve
COLD_WAIT = 5.0  # ...and when it has none yet; under Prometheus' default 10 s scrape timeout
REFRESH_TIMEOUT = 30.0  # a refresh that takes longer is abandoned and counts as a failure
BACKOFF_FACTOR = 10  # a snapshot lives at least this many times as long as it took to build

# Bounds on the product series whatever hosts report (docs/architecture.md, invariant 6).
PRODUCT_LIMIT = 25  # most-installed product names kept; the rest are reported as "other"
VERSION_LIMIT = 15  # most-installed versions kept per product; the rest as "other"
NAME_LIMIT = 80
OTHER = "other"
NO_VERSION = "unknown"

# Trailing version numbers and bitness are dropped from product names, so that
# "IDEMIA Authentic Web Pack 5.2 (x64)" and "IDEMIA Authentic Web Pack" are one product.
_NAME_SUFFIX = re.compile(
    r"(?:[\s_-]+(?:v?\d+(?:\.\d+)*|\(?(?:x64|x86|64-bit|32-bit)\)?))+$", re.IGNORECASE
)
_VERSION = re.compile(r"^\d{1,10}(?:\.\d{1,10}){0,3}$")

_DATABASE_ERRORS = (db.DatabaseError, SQLAlchemyError, OSError, TimeoutError)


def product_name(name: str) -> str:
    """A product name as a bounded, stable label value."""
    flat = " ".join(one_line(name).split())
    stripped = _NAME_SUFFIX.sub("", flat).strip()
    return (stripped or flat)[:NAME_LIMIT]


def product_version(version: str) -> str:
    """A Windows version as a label value; anything that is not one becomes "other"."""
    text = version.strip()
    if not text:
        return NO_VERSION
    return text if _VERSION.match(text) else OTHER


def bound_products(
    raw: Mapping[tuple[groups.Group, str, str], int], patterns: Iterable[str] | None
) -> dict[tuple[groups.Group, str, str], int]:
    """Host counts per (group, product, version), with names and versions normalised, only
    names the policy watches, and at most PRODUCT_LIMIT names and VERSION_LIMIT versions each.
    `patterns` None keeps every name (no policy could be read)."""
    watched = matcher(patterns) if patterns is not None else None
    spellings: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    normalised: dict[tuple[groups.Group, str, str], int] = defaultdict(int)
    for (group, name, version), hosts in raw.items():
        if watched is not None and not watched(name):
            continue
        label = product_name(name)
        key = label.casefold()  # one product however its vendor capitalised it this year
        spellings[key][label] += hosts
        normalised[(group, key, product_version(version))] += hosts
    display = {
        key: max(names.items(), key=lambda i: (i[1], i[0]))[0] for key, names in spellings.items()
    }
    by_product: dict[str, int] = defaultdict(int)
    by_version: dict[tuple[str, str], int] = defaultdict(int)
    for (_, key, version), hosts in normalised.items():
        by_product[key] += hosts
        by_version[(key, version)] += hosts
    kept = set(_most(by_product, PRODUCT_LIMIT))
    kept_versions = {
        key: set(_most({v: n for (k, v), n in by_version.items() if k == key}, VERSION_LIMIT))
        for key in kept
    }
    bounded: dict[tuple[groups.Group, str, str], int] = defaultdict(int)
    for (group, key, version), hosts in normalised.items():
        if key in kept:
            label = display[key]
            version = version if version in kept_versions[key] else OTHER
        else:
            label, version = OTHER, OTHER
        bounded[(group, label, version)] += hosts
    return dict(bounded)


def _most(counts: Mapping[str, int], limit: int) -> list[str]:
    return [k for k, _ in sorted(counts.items(), key=lambda i: (-i[1], i[0]))[:limit]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Deployment figures as read at one moment; immutable, so scrapes can share it."""

    at: datetime
    levels: tuple[groups.GroupLevel, ...]
    status: figures.StatusFigures
    rules: dict[tuple[groups.Group, str, str], int]
    catalogue: tuple[tuple[str, str], ...]  # (rule id, severity) of the active policy
    products: dict[tuple[groups.Group, str, str], int]
    suspended: dict[str, int]  # profile -> 1 suspended, 0 configured and in use
    daemons_live: int  # daemons heard from within daemon.heartbeat_timeout
    policy: tuple[str, str] | None  # (id, content hash)
    duration_s: float
    access: dict[groups.Group, GroupAccess] = field(default_factory=dict)
    access_imported_at: datetime | None = None  # the latest users report's import


async def read_snapshot(database: db.Database, settings: Settings, *, now: datetime) -> Snapshot:
    """Read every deployment figure in one read transaction, so the numbers agree."""
    started = time.perf_counter()
    levels = settings.metrics.group_by
    async with database.read() as session:
        await groups.for_aggregates(session)
        policy: Policy | None
        try:
            policy = await get_active_policy(session)
        except PolicyError as exc:
            log.warning("metrics: the active policy cannot be read: %s", exc)
            policy = None
        status = await figures.status_figures(
            session, levels=levels, now=now, cutoff=now - settings.freshness
        )
        rules = await figures.rule_failures(session, levels=levels)
        raw_products = await figures.product_installs(session, levels=levels)
        suspended = await figures.suspended_profiles(session, now=now)
        daemons = await live_instances(session, dead_before=now - settings.daemon.heartbeat_timeout)
        access = await group_access(session, levels=levels)
        imported = await latest_import(session)
    profiles = dict.fromkeys(settings.credentials, 0) | dict.fromkeys(suspended, 1)
    return Snapshot(
        at=now,
        levels=tuple(levels),
        status=status,
        rules=rules,
        catalogue=tuple((r.id, r.severity) for r in policy.rules) if policy else (),
        products=bound_products(raw_products, policy.watched_patterns if policy else None),
        suspended=profiles,
        daemons_live=len(daemons),
        policy=(policy.id, policy.content_hash) if policy else None,
        duration_s=time.perf_counter() - started,
        access=access,
        access_imported_at=imported.imported_at if imported else None,
    )


class DeploymentCollector(Collector):
    """The database-backed collector: call `prepare()` in the event loop before each scrape,
    then render the registry (which calls `collect()`) anywhere."""

    def __init__(
        self,
        database: db.Database,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.settings = settings
        self.clock = clock  # the "now" of the figures (stale, due)
        self.timer = timer  # measures the snapshot's age
        self._snapshot: Snapshot | None = None
        self._refreshed = float("-inf")  # loop time of the last refresh attempt that finished
        self._attempted = False
        self._task: asyncio.Task[None] | None = None

    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def _fresh(self) -> bool:
        if self._snapshot is None:
            return False
        lifetime = max(
            self.settings.metrics.cache.total_seconds(),
            BACKOFF_FACTOR * self._snapshot.duration_s,
        )
        return self.timer() - self._refreshed < lifetime

    async def refresh(self) -> None:
        """Read the figures now; a database failure empties the snapshot (and is logged)."""
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT):
                snapshot = await read_snapshot(self.database, self.settings, now=self.clock())
        except _DATABASE_ERRORS as exc:
            detail = db.describe_error(exc, self.database.url) if str(exc) else "timed out"
            log.warning("metrics: deployment figures unavailable: %s", detail)
            self._snapshot = None
        except Exception:
            # A fault in reading the figures must not fail every scrape of the process
            # metrics too; the traceback goes to the log, the scrape shows the figures gone.
            log.exception("metrics: deployment figures unavailable")
            self._snapshot = None
        else:
            self._snapshot = snapshot
        self._refreshed = self.timer()
        self._attempted = True

    async def prepare(self) -> None:
        """Make the snapshot fresh enough for a scrape, waiting at most briefly (see above)."""
        if self._fresh():
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.refresh(), name="cmscan-metrics-refresh")
        if not self._attempted:
            patience = COLD_WAIT
        elif self._snapshot is not None and self._snapshot.duration_s > SCRAPE_WAIT:
            patience = 0.0  # it will not be ready in time: serve the figures we have now
        else:
            patience = SCRAPE_WAIT
        if patience > 0:
            with contextlib.suppress(TimeoutError):
                # shield: a scrape that stops waiting must not cancel the refresh itself.
                await asyncio.wait_for(asyncio.shield(self._task), patience)

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def describe(self) -> Iterator[Metric]:
        # Registration must not read the database; the names are all it needs.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot
        up = GaugeMetricFamily(
            "cmscan_database_up",
            "1 if the last read of deployment figures from the database succeeded, else 0.",
        )
        up.add_metric([], 1 if snapshot is not None else 0)
        yield up
        if snapshot is not None:
            yield from families(snapshot)


def families(snapshot: Snapshot) -> Iterator[Metric]:
    """The deployment metric families of one snapshot, in a stable order."""
    levels = list(snapshot.levels)
    groups = sorted(snapshot.status.groups)

    hosts = GaugeMetricFamily(
        "cmscan_hosts",
        "Hosts in service by group and status (compliant, noncompliant, unreachable,"
        " auth_failed, error, unknown); retired hosts are left out.",
        labels=[*levels, "status"],
    )
    stale = GaugeMetricFamily(
        "cmscan_hosts_stale",
        "Hosts scanned at least once whose last good result is older than the freshness"
        " setting, or that never had one.",
        labels=levels,
    )
    for group in groups:
        counts = snapshot.status.groups[group]
        for status in sorted(counts.statuses):
            hosts.add_metric([*group, status], counts.statuses[status])
        stale.add_metric(list(group), counts.stale)
    yield hosts
    yield stale

    due = GaugeMetricFamily(
        "cmscan_hosts_due", "Hosts in service whose next scheduled scan is due now."
    )
    due.add_metric([], snapshot.status.due)
    yield due

    rules = GaugeMetricFamily(
        "cmscan_rule_failures",
        "Hosts whose latest verdict fails a rule, by group, rule and severity (required"
        " rules make a host noncompliant, advisory ones do not).",
        labels=[*levels, "rule", "severity"],
    )
    failures = dict(snapshot.rules)
    for group in groups:  # every rule of the active policy, so a fixed rule reads 0
        for rule, severity in snapshot.catalogue:
            failures.setdefault((group, rule, severity), 0)
    for (group, rule, severity), count in sorted(failures.items()):
        rules.add_metric([*group, rule, severity], count)
    yield rules

    products = GaugeMetricFamily(
        "cmscan_product_installs",
        "Hosts whose last good facts list a watched product, by group, product and version.",
        labels=[*levels, "product", "version"],
    )
    for (group, product, version), count in sorted(snapshot.products.items()):
        products.add_metric([*group, product, version], count)
    yield products

    suspended = GaugeMetricFamily(
        "cmscan_credential_suspended",
        "1 if the lockout guard has suspended a credential profile, 0 if it is in use.",
        labels=["profile"],
    )
    for profile, value in sorted(snapshot.suspended.items()):
        suspended.add_metric([profile], value)
    yield suspended

    live = GaugeMetricFamily(
        "cmscan_daemons_live",
        "Daemons sharing this database whose heartbeat is recent: the ones claiming work.",
    )
    live.add_metric([], snapshot.daemons_live)
    yield live

    yield from access_families(levels, snapshot.access, snapshot.access_imported_at)

    if snapshot.policy is not None:
        policy = GaugeMetricFamily(
            "cmscan_policy_info",
            "The active policy and its content hash.",
            labels=["policy", "hash"],
        )
        policy.add_metric([snapshot.policy[0], snapshot.policy[1][:12]], 1)
        yield policy

    read_at = GaugeMetricFamily(
        "cmscan_metrics_read_timestamp_seconds",
        "When these deployment figures were read from the database (Unix time).",
    )
    read_at.add_metric([], snapshot.at.timestamp())
    yield read_at
    took = GaugeMetricFamily(
        "cmscan_metrics_read_duration_seconds",
        "How long reading these deployment figures from the database took.",
    )
    took.add_metric([], round(snapshot.duration_s, 6))
    yield took
