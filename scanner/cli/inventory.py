"""`cmscan inventory`: import inventories (CSV, YAML, ODS epraccur.csv) and list hosts."""

from __future__ import annotations

import csv
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from inventory.load import Format, guess_format
from inventory.spec import FIELDS
from inventory.textfile import InventoryFileError
from scanner.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    ConfigOption,
    DbOption,
    err,
    fail,
    open_database,
    out,
    print_problems,
    run,
    settings,
)
from store.hosts import HostRow, list_hosts

if TYPE_CHECKING:
    from store.inventory_import import ImportReport

app = typer.Typer(help="Import and list the hosts to scan.", no_args_is_help=True)


class ListFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Inventory file: .csv (header row) or .yaml.")],
    ods: Annotated[
        Path | None,
        typer.Option(
            "--ods", help="NHS ODS epraccur.csv: fills practice names and practice -> CCG."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Check the file and show what would change; write nothing."),
    ] = False,
    skip_invalid: Annotated[
        bool,
        typer.Option("--skip-invalid", help="Import the valid rows and report the rest (exit 1)."),
    ] = False,
    partial: Annotated[
        bool,
        typer.Option(
            "--partial", help="Add and update hosts only; do not retire hosts missing from FILE."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Allow an import that retires most of the fleet.")
    ] = False,
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv or yaml (default: from the file name).")
    ] = None,
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Import an inventory: add new hosts, update changed ones, retire hosts no longer listed.

    A file with any invalid row imports nothing (unless --skip-invalid): every problem is
    printed with its file:line. Retired hosts keep their history and come back if listed again.
    """
    from store.inventory_import import import_inventory

    fmt = _format(file, file_format)
    current = settings(config, database_url=database)
    db = open_database(current)
    try:
        report = run(
            import_inventory(
                db,
                path=file,
                fmt=fmt,
                ods_path=ods,
                dry_run=dry_run,
                skip_invalid=skip_invalid,
                retire_missing=not partial,
                force=force,
            )
        )
    except InventoryFileError as exc:
        fail(str(exc))
    finally:
        run(db.dispose())
    print_problems(report.inventory.problems)
    raise typer.Exit(_summarise(report, file, dry_run=dry_run))


def _format(file: Path, given: str | None) -> Format:
    if given is not None:
        if given.lower() not in ("csv", "yaml"):
            fail(f"--format {given!r}: use csv or yaml")
        return "csv" if given.lower() == "csv" else "yaml"
    guessed = guess_format(file)
    if guessed is None:
        fail(f"{file}: cannot tell the format from the name; use --format csv or --format yaml")
    return guessed


def _summarise(report: ImportReport, file: Path, *, dry_run: bool) -> int:
    inventory, plan = report.inventory, report.plan
    # Every row read either became a host or has a problem; problems in the ODS file or in
    # the file as a whole belong to no row.
    errors = inventory.rows - len(inventory.hosts)
    if plan is None:
        if errors and inventory.hosts:
            err.print(
                f"{file}: {errors} of {inventory.rows} row(s) have problems; nothing was"
                " imported. Fix them, or use --skip-invalid to import the valid rows.",
                markup=False,
            )
        else:
            err.print(f"{file}: nothing was imported; fix the errors above first.", markup=False)
        return EXIT_FINDINGS
    title = f"{'Dry run: ' if dry_run else ''}inventory {escape(file.name)}"
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("rows read", str(inventory.rows))
    if errors:
        table.add_row("rows skipped (invalid)", str(errors))
    table.add_row("hosts added", str(len(plan.added)))
    table.add_row("hosts updated", str(len(plan.updated)))
    table.add_row("hosts unchanged", str(plan.unchanged))
    table.add_row("hosts retired", str(len(plan.retired)))
    table.add_row("hosts revived", str(len(plan.revived)))
    if report.ods_practices:
        table.add_row("ODS practices read", str(report.ods_practices))
    if report.orgs is not None:
        table.add_row(
            "organisations added / updated", f"{report.orgs.added} / {report.orgs.updated}"
        )
    out.print(table)
    if report.refused:
        err.print(f"[bold red]refused:[/] {report.refused}", markup=True)
        return EXIT_FINDINGS
    if dry_run:
        out.print("Dry run: nothing was written.")
    return EXIT_FINDINGS if inventory.errors else EXIT_OK


@app.command("list")
def list_(
    ccg: Annotated[str | None, typer.Option("--ccg", help="Only hosts of this CCG code.")] = None,
    practice: Annotated[
        str | None, typer.Option("--practice", help="Only hosts of this practice code.")
    ] = None,
    output: Annotated[
        ListFormat, typer.Option("--format", help="Output format.")
    ] = ListFormat.table,
    include_retired: Annotated[bool, typer.Option("--all", help="Include retired hosts.")] = False,
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """List inventoried hosts with their current status."""
    from exporters.spreadsheet_safety import neutralise

    current = settings(config, database_url=database)
    db = open_database(current)

    async def fetch() -> list[HostRow]:
        try:
            async with db.read() as session:
                return await list_hosts(
                    session, ccg=ccg, practice=practice, include_retired=include_retired
                )
        finally:
            await db.dispose()

    rows = run(fetch())
    if output is ListFormat.json:
        json.dump([_record(r) for r in rows], sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif output is ListFormat.csv:
        writer = csv.writer(sys.stdout, lineterminator="\r\n")
        columns = [*FIELDS, "status", "retired"]
        writer.writerow(columns)
        for row in rows:
            record = _record(row)
            writer.writerow(neutralise(record[c]) for c in columns)
    else:
        _table(rows)


@app.command("forget-host-key")
def forget_host_key_(
    hostname: Annotated[str, typer.Argument(help="The host's name as in the inventory.")],
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Its SSH port.")] = 22,
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Forget the SSH host key pinned for a host, after it was rebuilt or re-keyed.

    With ssh.host_key_policy = "tofu" the first key a host shows is pinned, and a different
    key is refused from then on. Once you know the change is genuine, forget the pin: the
    next scan pins the key the host shows then.
    """
    from store.host_keys import forget_host_key

    current = settings(config, database_url=database)
    db = open_database(current)

    async def forget() -> bool:
        try:
            async with db.write() as session:
                return await forget_host_key(session, host=hostname, port=port)
        finally:
            await db.dispose()

    if run(forget()):
        out.print(f"Forgot the host key pinned for {hostname}:{port}.", markup=False)
    else:
        fail(f"no host key is pinned for {hostname}:{port}", EXIT_FINDINGS)


def _record(row: HostRow) -> dict[str, object]:
    host = row.host
    record: dict[str, object] = {name: getattr(host, name) for name in FIELDS}
    record["tags"] = ";".join(host.tags)
    record["status"] = row.status
    record["retired"] = host.retired_at.isoformat() if host.retired_at else ""
    return record


def _table(rows: list[HostRow]) -> None:
    table = Table(title=f"{len(rows)} host(s)")
    for heading in ("host", "address", "transport", "practice", "ccg", "site", "profile", "status"):
        table.add_column(heading)
    for row in rows:
        host = row.host
        table.add_row(
            host.hostname + (" (retired)" if host.retired_at else ""),
            f"{host.address or '-'}:{host.port}",
            host.transport,
            host.practice_code or "-",
            host.ccg_code or "-",
            Text(host.site or ""),  # from someone's file: text, never markup
            host.credential_profile,
            row.status,
        )
    out.print(table)
