"""`cmscan waive`: excuse a host or a practice from one rule until a date; list and revoke."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from config.settings import parse_duration
from scanner.cli.common import ConfigOption, DbOption, fail, open_database, out, settings
from scanner.cli.policy import os_user, print_changes, run_graded
from store.db import Database
from store.hosts import HostLookupError, find_host
from store.model import utcnow

if TYPE_CHECKING:
    from engine.regrade import RegradeReport
    from store.waivers import WaiverRow


def parse_until(text: str, *, now: datetime) -> datetime:
    """A waiver's end: a date (through the end of that day, UTC), an ISO date-time (UTC unless
    it carries an offset) or a duration from now such as 30d or 2w. Raises ValueError."""
    value = text.strip()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    try:
        duration = parse_duration(value)
    except ValueError:
        duration = None
    if isinstance(duration, timedelta):
        return now + duration
    raise ValueError(f"{text!r} is not a date (2025-12-31), a date-time or a duration (30d)")


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else ""


def _print_list(rows: list[WaiverRow]) -> None:
    if not rows:
        out.print("No waivers.")
        return
    table = Table()
    for column in ("id", "for", "rule", "until", "state", "by", "reason"):
        table.add_column(column)
    for row in rows:
        waiver = row.waiver
        table.add_row(
            str(waiver.id),
            escape(row.target),
            escape(waiver.rule_id),
            _when(waiver.until),
            row.state if row.state == "active" else f"[dim]{row.state}[/]",
            escape(waiver.created_by),
            escape(waiver.reason),
        )
    out.print(table)


def _print_regrade(report: RegradeReport) -> None:
    hosts = "host" if report.regraded == 1 else "hosts"
    out.print(f"Re-graded {report.regraded} {hosts}; {report.changed} changed status.")
    if report.changed:
        print_changes(report)


def waive(
    host: Annotated[
        str | None,
        typer.Argument(help="Host name, short name or address to excuse.", show_default=False),
    ] = None,
    practice: Annotated[
        str | None,
        typer.Option("--practice", help="Excuse every host of this practice (ODS code)."),
    ] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Rule id to excuse.")] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="End: 2025-12-31 (through that day, UTC), or 30d, 2w."),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why: shown wherever the waiver is.")
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who grants or revokes it. Default: your login.")
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the waivers in force.")] = False,
    all_: Annotated[
        bool, typer.Option("--all", help="With --list: include expired and revoked waivers.")
    ] = False,
    revoke: Annotated[
        int | None, typer.Option("--revoke", help="Revoke the waiver with this id.", min=1)
    ] = None,
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Excuse a host (or a whole practice) from one rule until a date, list or revoke waivers.

    A waived rule is reported as waived instead of failing and does not make a host
    noncompliant. Affected hosts are re-graded at once; a waiver stops applying by itself
    when its date has passed.
    """
    from engine.waiving import grant_waiver, revoke_waiver
    from store.waivers import WaiverError, list_waivers

    granting = host is not None or practice is not None
    modes = sum((granting, list_, revoke is not None))
    if modes != 1:
        fail("give a HOST or --practice to grant a waiver, or --list, or --revoke ID")
    if all_ and not list_:
        fail("--all goes with --list")
    now = utcnow()
    who = (by or os_user()).strip() or "unknown"
    if granting:
        if host is not None and practice is not None:
            fail("give a HOST or --practice, not both")
        missing = [
            name
            for name, value in (("--rule", rule), ("--until", until), ("--reason", reason))
            if not value
        ]
        if missing:
            fail(f"a waiver needs {', '.join(missing)}")
        assert rule is not None
        assert until is not None
        assert reason is not None
        try:
            end = parse_until(until, now=now)
        except ValueError as exc:
            fail(f"--until: {exc}")
    db = open_database(settings(config, database_url=database))

    async def body(db: Database) -> None:
        try:
            if list_:
                async with db.read() as session:
                    rows = await list_waivers(session, now=now, include_inactive=all_)
                _print_list(rows)
            elif revoke is not None:
                waiver, report = await revoke_waiver(db, revoke, revoked_by=who, now=now)
                out.print(
                    f"Revoked waiver #{waiver.id} ({escape(waiver.rule_id)}).", highlight=False
                )
                _print_regrade(report)
            else:
                assert rule is not None
                assert reason is not None
                host_id = None
                target = f"practice {practice}"
                if host is not None:
                    async with db.read() as session:
                        try:
                            found = await find_host(session, name=host)
                        except HostLookupError as exc:
                            fail(str(exc))
                    if found is None or found.retired_at is not None:
                        fail(f"{host!r} is not in the inventory")
                    host_id, target = found.id, found.hostname
                waiver, report = await grant_waiver(
                    db,
                    rule_id=rule.strip(),
                    until=end,
                    reason=reason,
                    created_by=who,
                    host_id=host_id,
                    practice_code=practice,
                    now=now,
                )
                if waiver.practice_code is not None:
                    target = f"practice {waiver.practice_code}"
                out.print(
                    f"Waiver #{waiver.id}: {escape(target)} is excused from"
                    f" {escape(waiver.rule_id)} until {_when(waiver.until)} (by {escape(who)}).",
                    highlight=False,
                )
                _print_regrade(report)
        except WaiverError as exc:
            fail(str(exc))
        finally:
            await db.dispose()

    run_graded(body(db))
