"""`cmscan access`: who can open the PCN dashboard, from the CIM users report, beside machines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

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
from store import db

if TYPE_CHECKING:
    from engine.access import AccessImportReport
    from store.reports.access import GroupAccess, PracticeAccess
    from store.reports.groups import GroupLevel

app = typer.Typer(
    help="Who can open the PCN appointments dashboard: smartcard codes per practice.",
    no_args_is_help=True,
)
LEVELS = ("practice", "pcn", "ccg")
SHOWN = 8  # organisation codes listed in a warning before "and N more"


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Users report exported from CIM, as CSV.")],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Check the file and show what would change; write nothing."),
    ] = False,
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Replace the stored smartcard holders with a Care Identity Management users report.

    The report is the RA's current record: users no longer in it are removed, and cmscan
    keeps when each user gained or lost access. A file with any bad row imports nothing;
    every problem is printed as file:line. Header names CIM and spreadsheets use are
    recognised; map others in cmscan.toml under [access.columns].
    """
    from engine.access import import_access

    current = settings(config, database_url=database)
    database_ = open_database(current)
    try:
        report = run(
            import_access(
                database_,
                path=file,
                columns={str(key): header for key, header in current.access.columns.items()},
                dry_run=dry_run,
                keep_history=current.access.keep_history,
            )
        )
    except InventoryFileError as exc:
        fail(str(exc))
    except ValueError as exc:  # [access.columns] that cannot be applied to this file
        fail(f"{file}: [access.columns]: {exc}")
    finally:
        run(database_.dispose())
    print_problems(report.report.problems)
    raise typer.Exit(_summarise(report, file, dry_run=dry_run))


def _codes(counts: dict[str, Any]) -> str:
    listed = [f"{code} ({n})" for code, n in sorted(counts.items())[:SHOWN]]
    more = len(counts) - SHOWN
    return ", ".join(listed) + (f" and {more} more" if more > 0 else "")


def _summarise(result: AccessImportReport, file: Path, *, dry_run: bool) -> int:
    report, plan = result.report, result.plan
    if report.errors:
        err.print(f"{file}: {len(report.errors)} problem(s); nothing was imported.", markup=False)
        return EXIT_FINDINGS
    if result.refused or plan is None or result.rule is None:
        fail(result.refused or f"{file}: nothing to import")
    out.print(
        f"{file}: {report.rows} row(s), {report.users} user(s) at"
        f" {len({g.org_code for g in report.grants})} organisation(s)"
        + (f"; {report.duplicates} repeated row(s) collapsed" if report.duplicates else ""),
        markup=False,
    )
    rule = result.rule
    source = "the shipped baseline, as the active policy has none" if rule.fallback else rule.policy
    out.print(
        f"Access rule from {source}: any of {', '.join(rule.rule.granting_codes)}.",
        markup=False,
    )
    if result.not_in_inventory:
        err.print(
            f"warning: users at {len(result.not_in_inventory)} organisation(s) that are not"
            f" practices in the inventory (users): {_codes(result.not_in_inventory)}",
            markup=False,
        )
    if result.closed:
        err.print(
            f"warning: users at practice(s) closed or dormant in ODS: {_codes(result.closed)}",
            markup=False,
        )
    verb = "Would" if dry_run else "Did"
    out.print(
        f"{verb} add {len(plan.new_users)}, remove {len(plan.gone_users)} and rename"
        f" {len(plan.renamed)} user(s); {len(plan.new_grants)} new, {len(plan.changed_grants)}"
        f" changed and {len(plan.gone_grants)} removed user-practice record(s);"
        f" {plan.gained} gained access, {plan.lost} lost it.",
        markup=False,
    )
    if dry_run:
        out.print("Dry run: nothing was written.")
    else:
        out.print(f"Imported in {result.duration_s:.1f} s. See: cmscan access status")
    return EXIT_OK


@app.command("status")
def status(
    group: Annotated[
        str, typer.Option("--group", help="One line per practice, pcn or ccg.")
    ] = "practice",
    ccg: Annotated[str | None, typer.Option("--ccg", help="Only this CCG's practices.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Per practice: users who can open the dashboard, users missing a code, compliant
    machines, and readiness (ready, no_users, no_machines or no_users_no_machines)."""
    if group not in LEVELS:
        fail(f"--group must be one of {', '.join(LEVELS)}, not {group!r}")
    current = settings(config, database_url=database)
    open_database(current)
    practices, groups, names = run(_gather(current.database_url, group, ccg))
    if group == "practice":
        if as_json:
            _dump({"practices": [p.record() for p in practices]})
        else:
            _practice_table(practices)
        return
    if as_json:
        _dump(
            {
                "group": group,
                "groups": [
                    _group_json(group, code, names.get(code), figures)
                    for (code,), figures in sorted(groups.items())
                ],
            }
        )
    else:
        _group_table(group, groups, names)


async def _gather(
    url: str, group: str, ccg: str | None
) -> tuple[list[PracticeAccess], dict[tuple[str, ...], GroupAccess], dict[str, str]]:
    from store.organisations import organisation_names
    from store.reports.access import group_access, practice_access

    database = db.Database(url)
    try:
        async with database.read() as session:
            if group == "practice":
                return await practice_access(session, ccg=ccg), {}, {}
            level: GroupLevel = "pcn" if group == "pcn" else "ccg"
            figures = await group_access(session, levels=(level,), ccg=ccg)
            return [], figures, await organisation_names(session, kind=level)
    finally:
        await database.dispose()


def _dump(document: dict[str, Any]) -> None:
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _group_json(level: str, code: str, name: str | None, g: GroupAccess) -> dict[str, Any]:
    return {
        f"{level}_code": code,
        f"{level}_name": name,
        "practices": sum(g.practices.values()),
        "practices_ready": g.practices_ready,
        "practices_by_readiness": dict(g.practices),
        "users_with_access": g.users_with_access,
        "users_missing_codes": g.users_missing_codes,
        "machines_ready": g.machines_ready,
        "machines": g.machines,
    }


def _practice_table(practices: list[PracticeAccess]) -> None:
    table = Table(title="PCN dashboard access per practice", show_lines=False)
    for column in ("practice", "name", "CCG", "users with access", "missing codes"):
        table.add_column(
            column, justify="right" if "users" in column or "codes" in column else "left"
        )
    table.add_column("machines ready", justify="right")
    table.add_column("readiness")
    for p in practices:
        style = "green" if p.readiness == "ready" else "yellow"
        table.add_row(
            p.practice_code,
            p.practice_name or "",
            p.ccg_code or "",
            str(p.users_with_access),
            str(p.users_missing_codes),
            f"{p.machines_ready}/{p.machines}",
            f"[{style}]{p.readiness}[/]",
        )
    out.print(table)
    ready = sum(p.readiness == "ready" for p in practices)
    out.print(f"{ready} of {len(practices)} practice(s) ready.", markup=False)


def _group_table(
    level: str, groups: dict[tuple[str, ...], GroupAccess], names: dict[str, str]
) -> None:
    table = Table(title=f"PCN dashboard access per {level.upper()}")
    table.add_column(level.upper())
    table.add_column("name")
    for column in ("practices ready", "no users", "no machines", "users with access"):
        table.add_column(column, justify="right")
    table.add_column("missing codes", justify="right")
    table.add_column("machines ready", justify="right")
    for (code,), g in sorted(groups.items()):
        table.add_row(
            code,
            names.get(code, ""),
            f"{g.practices_ready}/{sum(g.practices.values())}",
            str(g.practices["no_users"]),
            str(g.practices["no_machines"]),
            str(g.users_with_access),
            str(g.users_missing_codes),
            f"{g.machines_ready}/{g.machines}",
        )
    out.print(table)


@app.command("purge")
def purge(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Remove every stored smartcard holder: IDs, names, codes, history and import records.

    Machines, scans and policies are untouched. Import a users report again to start over.
    """
    from store.access import purge_access

    if not yes:
        if not sys.stdin.isatty():
            fail("refusing to purge without --yes when not run from a terminal")
        typer.confirm("Remove every stored user, their codes and their history?", abort=True)
    current = settings(config, database_url=database)
    database_ = open_database(current)

    async def body() -> Any:
        try:
            async with database_.write() as session:
                return await purge_access(session)
        finally:
            await database_.dispose()

    purged = run(body())
    out.print(
        f"Removed {purged.users} user(s), {purged.grants} user-practice record(s),"
        f" {purged.changes} history row(s) and {purged.imports} import record(s).",
        markup=False,
    )
