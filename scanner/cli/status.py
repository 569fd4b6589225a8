"""`cmscan status`: the fleet per CCG at a glance, the first command to run."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from config.settings import Settings
from scanner.cli.common import ConfigOption, DbOption, fail, open_database, out, run, settings
from store import db
from store.instances import live_instances
from store.model import Status, utcnow
from store.organisations import organisation_names
from store.reports.figures import (
    GroupCounts,
    QueueFigures,
    StatusFigures,
    rescan_queue,
    rule_failures,
    status_figures,
    suspended_profiles,
    top_rules,
)
from store.reports.groups import GROUP_LEVELS, Group, GroupLevel, for_aggregates

TOP_RULES = 3


@dataclass(frozen=True, slots=True)
class _Overview:
    level: GroupLevel
    now: datetime
    policy: str
    figures: StatusFigures
    names: dict[str, str]
    top: dict[Group, list[tuple[str, int]]]
    daemons: int
    queue: QueueFigures
    suspended: list[str]


def status(
    group: Annotated[
        str, typer.Option("--group", help="Group hosts by icb, ccg, pcn or practice.")
    ] = "ccg",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Hosts per CCG: share compliant, noncompliant, unreachable, stale, top failing rules.

    Also shows the active policy, running daemons, queued rescans and suspended credentials.
    A table on a terminal, tab-separated columns when piped.
    """
    if group not in GROUP_LEVELS:
        fail(f"--group must be one of {', '.join(GROUP_LEVELS)}, not {group!r}")
    current = settings(config, database_url=database)
    open_database(current)
    level = next(lv for lv in GROUP_LEVELS if lv == group)
    overview = run(_gather(current, level))
    if as_json:
        json.dump(_as_json(overview, current), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif out.is_terminal:
        _table(overview, current)
    else:
        _plain(overview)


async def _gather(current: Settings, level: GroupLevel) -> _Overview:
    from policy import PolicyError
    from store.policies import get_active_policy

    database = db.Database(current.database_url)
    now = utcnow()
    try:
        async with database.read() as session:
            await for_aggregates(session)
            try:
                policy = await get_active_policy(session)
                label = policy.label
            except PolicyError as exc:
                label = f"unusable ({exc})"
            figures = await status_figures(
                session, levels=(level,), now=now, cutoff=now - current.freshness
            )
            failures = await rule_failures(session, levels=(level,))
            names = await organisation_names(session, kind=level)
            daemons = await live_instances(
                session, dead_before=now - current.daemon.heartbeat_timeout
            )
            queue = await rescan_queue(session)
            suspended = await suspended_profiles(session, now=now)
    finally:
        await database.dispose()
    return _Overview(
        level=level,
        now=now,
        policy=label,
        figures=figures,
        names=names,
        top=top_rules(failures, limit=TOP_RULES),
        daemons=len(daemons),
        queue=queue,
        suspended=suspended,
    )


_COLUMNS = (
    "hosts",
    "compliant %",
    "compliant",
    "noncompliant",
    "unreachable",
    "auth failed",
    "error",
    "never scanned",
    "stale",
)


def _row(counts: GroupCounts) -> list[str]:
    s = counts.statuses
    return [
        str(counts.hosts),
        f"{counts.compliant_percent:.1f}",
        str(s[Status.COMPLIANT]),
        str(s[Status.NONCOMPLIANT]),
        str(s[Status.UNREACHABLE]),
        str(s[Status.AUTH_FAILED]),
        str(s[Status.ERROR]),
        str(s[Status.UNKNOWN]),
        str(counts.stale),
    ]


def _top(rules: list[tuple[str, int]]) -> str:
    return ", ".join(f"{rule} ({hosts})" for rule, hosts in rules)


def _headline(o: _Overview, current: Settings) -> list[str]:
    days = current.freshness.total_seconds() / 86400
    lines = [
        f"policy {o.policy}; stale after {days:g} day(s); {o.figures.due} host(s) due for a scan",
        f"{o.daemons} daemon(s) running; {o.queue.pending_rescans} rescan request(s) waiting",
    ]
    if o.suspended:
        lines.append(f"credential profiles suspended: {', '.join(o.suspended)}")
    return lines


def _table(o: _Overview, current: Settings) -> None:
    for line in _headline(o, current):
        out.print(line, markup=False)
    if not o.figures.groups:
        out.print("No hosts in service: import an inventory with `cmscan inventory import`.")
        return
    table = Table(title=f"Hosts per {o.level.upper()}", title_justify="left")
    table.add_column(o.level)
    table.add_column("name")
    for heading in _COLUMNS:
        table.add_column(heading, justify="right")
    table.add_column("top failing rules")
    for group, counts in sorted(o.figures.groups.items()):
        code = group[0]
        # Text, not markup: codes and names come from inventories and ODS files.
        table.add_row(
            Text(code),
            Text(" ".join(o.names.get(code, "").split())),
            *_row(counts),
            Text(_top(o.top.get(group, []))),
        )
    table.add_section()
    table.add_row("all", "", *_row(o.figures.total()), "", style="bold")
    out.print(table)


def _plain(o: _Overview) -> None:
    # No colours, boxes or wrapping: one tab-separated row per group, for grep and cut.
    print("\t".join([o.level, "name", *_COLUMNS, "top failing rules"]))
    for group, counts in sorted(o.figures.groups.items()):
        code = group[0]
        name = " ".join(o.names.get(code, "").split())
        print("\t".join([code, name, *_row(counts), _top(o.top.get(group, []))]))
    print("\t".join(["all", "", *_row(o.figures.total()), ""]))


def _as_json(o: _Overview, current: Settings) -> dict[str, Any]:
    def group(code: str, counts: GroupCounts, top: list[tuple[str, int]]) -> dict[str, Any]:
        return {
            "code": code,
            "name": o.names.get(code),
            "hosts": counts.hosts,
            "statuses": counts.statuses,
            "compliant_percent": counts.compliant_percent,
            "stale": counts.stale,
            "top_failing_rules": [{"rule": r, "hosts": n} for r, n in top],
        }

    return {
        "generated_at": o.now.isoformat(),
        "policy": o.policy,
        "group": o.level,
        "freshness_seconds": current.freshness.total_seconds(),
        "hosts_due": o.figures.due,
        "daemons": o.daemons,
        "rescans_waiting": o.queue.pending_rescans,
        "suspended_profiles": o.suspended,
        "total": group("all", o.figures.total(), []),
        "groups": [
            group(g[0], counts, o.top.get(g, [])) for g, counts in sorted(o.figures.groups.items())
        ],
    }
