"""The export of unpatched machines as CSV or JSON, streamed; shared by the CLI and the API.

"Unpatched" means noncompliant hosts; with `include_unreachable` also hosts whose last probe
failed (unreachable, auth_failed, error); with `stale_days` also hosts with no good result in
that many days. Rows come from a server-side cursor and leave as chunks of bytes, so memory
stays flat however many hosts match.

CSV follows RFC 4180 (the csv module, CRLF line ends) and every cell a spreadsheet would run
as a formula is neutralised: host, site and practice names come from other people's files.
`excel` adds a UTF-8 byte order mark so that Excel reads the accents in practice names.
JSON is one array of objects, written as it is read; lists stay lists there.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from exporters.chunks import MEDIA_TYPES, ExportStats, encoded
from exporters.spreadsheet_safety import neutralise
from policy import Policy
from policy.products import is_credential_management, is_identity_agent, is_smartcard_middleware
from policy.versions import try_parse_version
from store import db
from store.model import utcnow
from store.policies import get_active_policy
from store.reports import groups, unpatched

ExportFormat = Literal["csv", "json"]

COLUMNS = (
    "hostname",
    "address",
    "site",
    "practice_code",
    "practice_name",
    "pcn",
    "ccg",
    "icb",
    "status",
    "failing_rules",
    "failing_titles",
    "reasons",
    "remediation",
    "cm_version",
    "identity_agent_version",
    "middleware",
    "middleware_version",
    "last_scan",
    "last_success",
    "days_unreachable",
    "waived_rules",
)
# Rule ids never contain ';'; titles and remediation texts may, so they get a rarer separator.
ID_SEPARATOR = "; "
TEXT_SEPARATOR = " | "

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ExportError(ValueError):
    """Export options that make no sense; the message says which."""


def check_code(name: str, value: str | None) -> None:
    """Refuse a filter that cannot be an organisation code, before any query runs."""
    if value is not None and (len(value) > 16 or _CONTROL.search(value)):
        raise ExportError(f"{name} {value!r} is not an organisation code")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    ccg: str | None = None
    practice: str | None = None
    include_unreachable: bool = False
    stale_days: int | None = None
    excel: bool = False
    format: ExportFormat = "csv"

    def __post_init__(self) -> None:
        check_code("ccg", self.ccg)
        check_code("practice", self.practice)
        if self.stale_days is not None and not 0 <= self.stale_days <= 36_500:
            raise ExportError(f"stale days must be between 0 and 36500, not {self.stale_days}")
        if self.format not in MEDIA_TYPES:
            raise ExportError(f"unknown export format {self.format!r}; use csv or json")

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    def selection(self, now: datetime) -> unpatched.UnpatchedSelection:
        stale = now - timedelta(days=self.stale_days) if self.stale_days is not None else None
        return unpatched.UnpatchedSelection(
            ccg=self.ccg,
            practice=self.practice,
            include_unreachable=self.include_unreachable,
            stale_before=stale,
        )


def _dicts(items: object) -> list[dict[str, Any]]:
    """The objects of a stored JSON list; anything else in it (or instead of it) is ignored."""
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _newest(products: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The product with the highest version (a host can list an old and a new install)."""
    best, best_version = None, None
    for product in products:
        version = try_parse_version(_text(product.get("version")))
        if best is None or (
            version is not None and (best_version is None or version > best_version)
        ):
            best, best_version = product, version
    return best


def _named(
    products: list[dict[str, Any]], is_product: Callable[[str], bool]
) -> dict[str, Any] | None:
    return _newest(p for p in products if is_product(_text(p.get("name"))))


def _middleware(products: list[dict[str, Any]]) -> dict[str, Any] | None:
    return _newest(
        p
        for p in products
        if is_smartcard_middleware(_text(p.get("name")), _text(p.get("publisher")))
    )


def _when(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def record(host: unpatched.UnpatchedHost, policy: Policy, now: datetime) -> dict[str, Any]:
    """One host's row, with lists as lists (JSON keeps them; CSV joins them)."""
    failing = _dicts(host.failing)
    rule_ids = [_text(f.get("rule")) for f in failing]
    remediation = []
    for rule_id in rule_ids:
        rule = policy.rule(rule_id)
        if rule is not None and rule.remediation:
            remediation.append(f"{rule_id}: {' '.join(rule.remediation.split())}")
    products = _dicts(host.products)
    cm, agent, middleware = (
        _named(products, is_credential_management),
        _named(products, is_identity_agent),
        _middleware(products),
    )
    days = None
    if host.status in groups.FAILED_STATUSES:
        since = host.last_success_at or host.first_seen_at
        days = max(0, (now - since).days)
    return {
        "hostname": host.hostname,
        "address": host.address,
        "site": host.site,
        "practice_code": host.practice_code,
        "practice_name": host.practice_name,
        "pcn": host.pcn_code,
        "ccg": host.ccg_code,
        "icb": host.icb_code,
        "status": host.status,
        "failing_rules": rule_ids,
        "failing_titles": [_text(f.get("title")) for f in failing],
        "reasons": [_text(f.get("reason")) for f in failing],
        "remediation": remediation,
        "cm_version": _text(cm.get("version")) or None if cm else None,
        "identity_agent_version": _text(agent.get("version")) or None if agent else None,
        "middleware": _text(middleware.get("name")) or None if middleware else None,
        "middleware_version": _text(middleware.get("version")) or None if middleware else None,
        "last_scan": _when(host.last_scan_at),
        "last_success": _when(host.last_success_at),
        "days_unreachable": days,
        "waived_rules": [_text(f.get("rule")) for f in _dicts(host.waived)],
    }


def csv_cells(row: dict[str, Any]) -> list[str]:
    cells = []
    for column in COLUMNS:
        value = row[column]
        if isinstance(value, list):
            separator = (
                ID_SEPARATOR if column in ("failing_rules", "waived_rules") else TEXT_SEPARATOR
            )
            value = separator.join(value)
        cells.append(neutralise(value))
    return cells


async def export_unpatched(
    database: db.Database,
    options: ExportOptions,
    *,
    now: datetime | None = None,
    stats: ExportStats | None = None,
) -> AsyncIterator[bytes]:
    """The export as chunks of bytes, read from one read transaction as they are written."""
    now = now or utcnow()
    stats = stats if stats is not None else ExportStats()
    async with database.read() as session:
        policy = await get_active_policy(session)
        hosts = unpatched.unpatched_hosts(session, selection=options.selection(now))

        rows = (record(host, policy, now) async for host in hosts)
        async for chunk in encoded(
            rows,
            format=options.format,
            header=COLUMNS,
            cells=csv_cells,
            excel=options.excel,
            stats=stats,
        ):
            yield chunk
