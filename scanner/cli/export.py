"""`cmscan export`: the machines still to fix, and the users an RA must give a code."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer

from config.settings import Settings
from scanner.cli.common import ConfigOption, DbOption, err, fail, open_database, run, settings
from store import db

if TYPE_CHECKING:
    from exporters.csv import (
        ExportFormat,
    )

# Options every export has: where it goes, and in which form.
OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write here instead of standard output.", dir_okay=False),
]
ExcelOption = Annotated[
    bool, typer.Option("--excel", help="Start with a UTF-8 byte order mark for Excel.")
]
FormatOption = Annotated[
    str, typer.Option("--format", help="csv (RFC 4180) or json (one array of objects).")
]

app = typer.Typer(help="Export lists: machines to fix, users without a code.", no_args_is_help=True)


@app.command("unpatched")
def unpatched(
    output: OutputOption = None,
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
    excel: ExcelOption = False,
    fmt: FormatOption = "csv",
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Noncompliant machines with their failing rules, remediation and installed versions.

    Cells a spreadsheet would run as formulas are neutralised. The export streams, so a
    fleet of any size uses little memory.
    """
    from exporters.chunks import ExportStats
    from exporters.csv import ExportError, ExportOptions, export_unpatched

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
    _deliver(output, lambda database: export_unpatched(database, options, stats=stats), current)
    where = str(output) if output is not None else "standard output"
    err.print(f"{stats.rows} host(s) written to {where}", markup=False)


@app.command("access-gaps")
def access_gaps(
    output: OutputOption = None,
    ccg: Annotated[str | None, typer.Option("--ccg", help="Only practices of this CCG.")] = None,
    practice: Annotated[str | None, typer.Option("--practice", help="Only this practice.")] = None,
    excel: ExcelOption = False,
    fmt: FormatOption = "csv",
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """For the RA: each user at a practice who holds none of the codes that open its dashboard.

    One row per user and practice, with the codes held there and the codes that would grant
    access (from the active policy). Cells a spreadsheet would run as formulas are neutralised.
    """
    from exporters.access_gaps import GapOptions, export_access_gaps
    from exporters.chunks import ExportStats
    from exporters.csv import ExportError

    if fmt not in ("csv", "json"):
        fail(f"--format must be csv or json, not {fmt!r}")
    try:
        options = GapOptions(ccg=ccg, practice=practice, excel=excel, format=_format(fmt))
    except ExportError as exc:
        fail(str(exc))
    current = settings(config, database_url=database)
    open_database(current)
    stats = ExportStats()
    _deliver(output, lambda database: export_access_gaps(database, options, stats=stats), current)
    where = str(output) if output is not None else "standard output"
    err.print(f"{stats.rows} user-practice gap(s) written to {where}", markup=False)


Chunks = Callable[[db.Database], AsyncIterator[bytes]]


def _deliver(output: Path | None, chunks: Chunks, current: Settings) -> None:
    """Stream an export to the file or standard output; a failed export leaves no file."""
    if output is None:
        run(_write(current.database_url, chunks, sys.stdout.buffer))
        sys.stdout.flush()
        return
    try:
        handle = output.open("wb")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    try:
        with handle:
            run(_write(current.database_url, chunks, handle))
    except BaseException:
        # Half a list looks like a whole one in a spreadsheet: leave nothing behind.
        with contextlib.suppress(OSError):
            output.unlink()
        raise


def _format(value: str) -> ExportFormat:
    return "json" if value == "json" else "csv"


async def _write(url: str, chunks: Chunks, handle: BinaryIO) -> None:
    database = db.Database(url)
    try:
        async for chunk in chunks(database):
            handle.write(chunk)
    finally:
        await database.dispose()
