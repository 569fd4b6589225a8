"""`cmscan rescan`: ask the daemon to re-check machines now, and optionally wait for verdicts."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer
from rich.markup import escape

from config.settings import Settings
from scanner.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    ConfigOption,
    DbOption,
    err,
    fail,
    open_database,
    out,
    run,
    settings,
)
from scanner.cli.policy import os_user
from store import db
from store.instances import live_instances
from store.model import utcnow
from store.rescans import (
    RescanError,
    RescanResult,
    Selector,
    request_rescan,
    rescan_results,
)


def rescan(
    host: Annotated[
        list[str] | None, typer.Option("--host", help="A host to rescan (repeat for several).")
    ] = None,
    practice: Annotated[
        str | None, typer.Option("--practice", help="Every host of this practice.")
    ] = None,
    ccg: Annotated[str | None, typer.Option("--ccg", help="Every host of this CCG.")] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", help="Every host now in this status, e.g. noncompliant."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait and print each host's new verdict.")
    ] = False,
    timeout: Annotated[
        int, typer.Option("--timeout", min=1, help="Seconds --wait waits at most.")
    ] = 600,
    requested_by: Annotated[
        str | None, typer.Option("--by", help="Who asks (default: your user name).")
    ] = None,
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Queue a rescan; a running daemon starts it within seconds.

    Use it right after fixing a machine: `cmscan rescan --host PC01 --wait` prints the new
    verdict as soon as the daemon has probed it. Without a daemon the request waits for one.
    """
    current = settings(config, database_url=database)
    open_database(current)
    selector = Selector(hosts=tuple(host or ()), practice=practice, ccg=ccg, status=status)
    who = requested_by or os_user()
    raise typer.Exit(run(_rescan(current, selector, who, wait=wait, patience=timeout)))


async def _rescan(
    current: Settings, selector: Selector, who: str, *, wait: bool, patience: int
) -> int:
    database = db.Database(current.database_url)
    try:
        try:
            async with database.write() as session:
                request = await request_rescan(
                    session, selector=selector, requested_by=who, now=utcnow()
                )
        except RescanError as exc:
            fail(str(exc))
        async with database.read() as session:
            daemons = await live_instances(
                session, dead_before=utcnow() - current.daemon.heartbeat_timeout
            )
        count = request.host_count
        out.print(
            f"rescan #{request.id} requested for {count} host(s) ({selector.describe()})",
            markup=False,
        )
        if not daemons:
            err.print(
                "no cmscan daemon is running against this database: the request waits until"
                " one starts (cmscan daemon)"
            )
        if not wait:
            return EXIT_OK
        assert request.id is not None
        return await _wait(database, request.id, request.host_count, patience)
    finally:
        await database.dispose()


async def _wait(database: db.Database, request_id: int, expected: int, patience: int) -> int:
    deadline = time.monotonic() + patience
    shown = 0
    failed = 0
    while time.monotonic() < deadline:
        async with database.read() as session:
            request, results = await rescan_results(session, request_id=request_id)
        for result in results[shown:]:
            _print(result)
            failed += result.outcome != "ok"
        shown = len(results)
        if request is None or request.state == "done":
            return EXIT_FINDINGS if failed else EXIT_OK
        await asyncio.sleep(1.0)
    err.print(
        f"gave up waiting after {patience} s: {shown} of {expected} host(s) rescanned;"
        f" the request stays queued (rescan #{request_id})"
    )
    return EXIT_FINDINGS


def _print(result: RescanResult) -> None:
    # Reasons quote what hosts answered: never let them be read as markup.
    host = escape(result.hostname)
    if result.outcome != "ok":
        reason = escape(f"({result.outcome}: {result.reason})")
        out.print(f"{host}: [red]{escape(result.status)}[/] {reason}")
    elif result.failing_rules:
        failing = escape(", ".join(result.failing_rules))
        out.print(f"{host}: [yellow]noncompliant[/] (failing: {failing})")
    else:
        out.print(f"{host}: [green]compliant[/]")
