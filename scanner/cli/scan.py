"""`cmscan scan`: a one-shot sweep of a selection of hosts, with progress and a summary per CCG."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from config.logs import configure
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
from store import db
from store.hosts import transports_in_service
from store.model import Status
from store.rescans import RescanError, Selector, select_hosts

if TYPE_CHECKING:
    from engine.sweep import SweepTally

STATUSES = [s.value for s in Status]
PLAIN_PROGRESS_SECONDS = 5.0


def scan(
    ccg: Annotated[str | None, typer.Option("--ccg", help="Only hosts of this CCG code.")] = None,
    practice: Annotated[
        str | None, typer.Option("--practice", help="Only hosts of this practice code.")
    ] = None,
    host: Annotated[
        list[str] | None, typer.Option("--host", help="Only this host (repeat for several).")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", help=f"Only hosts now in this status: {', '.join(STATUSES)}."),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            min=1,
            max=16_384,
            help="Probes at once (default: schedule.concurrency).",
        ),
    ] = None,
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Scan the selected hosts now (all hosts in service if nothing is selected), then exit.

    Shows progress while it runs and a summary per CCG at the end. Exit code 0 when every
    host was scanned, 1 when some could not be (unreachable, wrong credentials, errors) or
    the sweep was interrupted.
    """
    current = settings(config, database_url=database)
    configure(
        level="warning" if current.log_level == "info" else current.log_level,
        fmt=current.log_format,
    )
    open_database(current)
    selector = Selector(hosts=tuple(host or ()), practice=practice, ccg=ccg, status=status)
    tally, complete = run(_sweep(current, selector, concurrency))
    _summary(tally)
    if not complete:
        err.print(f"interrupted: {tally.done} of {tally.total} hosts scanned")
    raise typer.Exit(EXIT_OK if complete and tally.failed == 0 else EXIT_FINDINGS)


async def _sweep(
    current: Settings, selector: Selector, concurrency: int | None
) -> tuple[SweepTally, bool]:
    from engine.runtime import build_runtime, new_scanner_id
    from engine.sweep import SweepTally, run_sweep
    from engine.transports import TransportError, build_collectors
    from scanner.signals import signals_stop

    database = db.Database(current.database_url)
    try:
        async with database.read() as session:
            host_ids = await select_hosts(session, selector, everything_if_empty=True)
            transports = await transports_in_service(session)
    except RescanError as exc:
        fail(str(exc))
    finally:
        await database.dispose()
    if not host_ids:
        fail(f"no host in service matches {selector.describe()}; import an inventory first")
    try:
        # Only the transports the fleet uses: asyncssh costs a WinRM-only sweep its import.
        collectors = build_collectors(
            current, database=db.Database(current.database_url), names=transports
        )
    except TransportError as exc:
        fail(str(exc))
    runtime = await build_runtime(
        current, collectors=collectors, scanner_id=new_scanner_id("scan"), concurrency=concurrency
    )
    for profile, problem in runtime.credentials.problems.items():
        err.print("[yellow]warning:[/] ", end="", markup=True)
        err.print(f"credential profile {profile!r}: {problem}", markup=False)
    tally = SweepTally(total=len(host_ids))
    stop = asyncio.Event()
    display = asyncio.create_task(_show_progress(tally, stop))
    try:
        async with signals_stop(stop):
            complete = await run_sweep(
                runtime, host_ids=host_ids, tally=tally, stop=stop, grace=current.daemon.grace
            )
    finally:
        stop.set()
        await display
        await runtime.close()
    return tally, complete


def _outcomes(tally: SweepTally) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(tally.outcomes.items()))


async def _show_progress(tally: SweepTally, stop: asyncio.Event) -> None:
    started = time.monotonic()
    if not sys.stderr.isatty():
        # Logs and CI output want plain periodic lines, not a redrawn bar.
        while not stop.is_set() and tally.done < tally.total:
            # Waiting on `stop` rather than sleeping lets the process exit the moment the
            # sweep ends instead of up to a whole interval later.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PLAIN_PROGRESS_SECONDS)
            if stop.is_set():
                return
            elapsed = time.monotonic() - started
            rate = tally.done / elapsed if elapsed else 0.0
            eta = (tally.total - tally.done) / rate if rate else float("nan")
            err.print(
                f"scanned {tally.done}/{tally.total} ({rate:.1f} hosts/s, ETA {eta:.0f}s):"
                f" {_outcomes(tally)}",
                markup=False,
            )
        return
    columns = (
        TextColumn("[bold]scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f} hosts/s"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[outcomes]}"),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task("scan", total=tally.total, rate=0.0, outcomes="")
        while True:
            elapsed = time.monotonic() - started
            progress.update(
                task,
                completed=tally.done,
                outcomes=_outcomes(tally),
                rate=tally.done / elapsed if elapsed else 0.0,
            )
            if stop.is_set() or tally.done >= tally.total:
                return
            await asyncio.sleep(0.2)


def _summary(tally: SweepTally) -> None:
    table = Table(title=f"Scanned {tally.done} of {tally.total} hosts")
    columns = ["compliant", "noncompliant", "unreachable", "auth_failed", "error"]
    table.add_column("CCG")
    table.add_column("hosts", justify="right")
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")
    table.add_column("% compliant", justify="right")
    totals: Counter[str] = Counter()
    for ccg, counts in sorted(tally.by_ccg.items()):
        totals.update(counts)
        table.add_row(ccg, *_row(counts, columns))
    if len(tally.by_ccg) > 1:
        table.add_row("all", *_row(totals, columns), style="bold")
    out.print(table)
    out.print(f"outcomes: {_outcomes(tally) or 'none'}")


def _row(counts: Counter[str], columns: list[str]) -> list[str]:
    hosts = sum(counts.values())
    graded = counts["compliant"] + counts["noncompliant"]
    share = f"{100 * counts['compliant'] / graded:.0f}%" if graded else "-"
    return [str(hosts), *(str(counts[c]) for c in columns), share]
