"""`cmscan export unpatched`: the machines still to fix, as CSV or JSON."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer

from scanner.cli.common import ConfigOption, DbOption, err, fail, open_database, run, settings
from store import db

if TYPE_CHECKING:
    from exporters.csv import (
        ExportFormat,
        ExportOptions,
        ExportStats,
    )

app = typer.Typer(help="Export lists of machines.", no_args_is_help=True)


@app.command("unpatched")
def unpatched(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write here instead of standard output.", dir_okay=False
        ),
    ] = None,
    ccg: Annotated[str | None, typer.Option("--ccg", help="Only hosts of this CCG.")] = None,
    practice: Annotated[
        str | None, typer.Option("--practice", help="Only hosts of this practice.")
    ] = None,
    include_unreachable: Annotated[
        bool,
        typer.Option(
            "--include-unreachable",
            help="Also hosts whose last probe failed (unreachable, auth_failed, error).",
        ),
    ] = False,
    stale_days: Annotated[
        int | None,
        typer.Option(
            "--stale-days",
            min=0,
            max=36_500,
            help="Also hosts with no good result in this many days.",
            show_default=False,
        ),
    ] = None,
    excel: Annotated[
        bool, typer.Option("--excel", help="Start with a UTF-8 byte order mark for Excel.")
    ] = False,
    fmt: Annotated[
        str, typer.Option("--format", help="csv (RFC 4180) or json (one array of objects).")
    ] = "csv",
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Noncompliant machines with their failing rules, remediation and installed versions.

    Cells a spreadsheet would run as formulas are neutralised. The export streams, so a
    fleet of any size uses little memory.
    """
    from exporters.csv import ExportError, ExportOptions, ExportStats

    if fmt not in ("csv", "json"):
        fail(f"--format must be csv or json, not {fmt!r}")
    try:
        options = ExportOptions(
            ccg=ccg,
            practice=practice,
            include_unreachable=include_unreachable,
            stale_days=stale_days,
            excel=excel,
            format=_format(fmt),
        )
    except ExportError as exc:
        fail(str(exc))
    current = settings(config, database_url=database)
    open_database(current)
    stats = ExportStats()
    if output is None:
        run(_write(current.database_url, options, sys.stdout.buffer, stats))
        sys.stdout.flush()
    else:
        try:
            handle = output.open("wb")
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror}")
        try:
            with handle:
                run(_write(current.database_url, options, handle, stats))
        except BaseException:
            # Half a list looks like a whole one in a spreadsheet: leave nothing behind.
            with contextlib.suppress(OSError):
                output.unlink()
            raise
    where = str(output) if output is not None else "standard output"
    err.print(f"{stats.rows} host(s) written to {where}", markup=False)


def _format(value: str) -> ExportFormat:
    return "json" if value == "json" else "csv"


async def _write(url: str, options: ExportOptions, handle: BinaryIO, stats: ExportStats) -> None:
    from exporters.csv import export_unpatched

    database = db.Database(url)
    try:
        async for chunk in export_unpatched(database, options, stats=stats):
            handle.write(chunk)
    finally:
        await database.dispose()
