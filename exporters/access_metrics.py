"""Dashboard access gauges per group: counts only, never a user's name or ID as a label."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric

from store.reports.access import READINESS, GroupAccess
from store.reports.groups import Group


def access_families(
    levels: Sequence[str], groups: Mapping[Group, GroupAccess], imported_at: datetime | None
) -> Iterator[Metric]:
    """Every group with practices gets every series (0 where none), so that a dashboard and
    an alert see the figures before the first users report is imported."""
    users = GaugeMetricFamily(
        "cmscan_access_users",
        "Users whose smartcard codes open the PCN dashboard for at least one practice of the"
        " group (each user once).",
        labels=list(levels),
    )
    missing = GaugeMetricFamily(
        "cmscan_access_users_missing_codes",
        "Users at a practice of the group who hold none of the codes that open its"
        " dashboard there (each user once).",
        labels=list(levels),
    )
    practices = GaugeMetricFamily(
        "cmscan_access_practices",
        "Practices with hosts in service by dashboard readiness: ready (a user with access and"
        " a compliant machine), no_users, no_machines, no_users_no_machines.",
        labels=[*levels, "readiness"],
    )
    for group in sorted(groups):
        figures = groups[group]
        users.add_metric(list(group), figures.users_with_access)
        missing.add_metric(list(group), figures.users_missing_codes)
        for readiness in READINESS:
            practices.add_metric([*group, readiness], figures.practices[readiness])
    yield users
    yield missing
    yield practices
    if imported_at is not None:
        when = GaugeMetricFamily(
            "cmscan_access_report_timestamp_seconds",
            "When the users report was last imported (Unix time).",
        )
        when.add_metric([], imported_at.timestamp())
        yield when
