"""`cmscan policy`: check, show, explain and apply the compliance policy."""

from __future__ import annotations

import getpass
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from collectors.facts import Facts
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
from store.db import Database
from store.hosts import HostLookupError, find_host
from store.model import HostState, utcnow

if TYPE_CHECKING:
    from engine.regrade import RegradeReport
    from policy import Policy

app = typer.Typer(
    help="Check, show, explain and apply the compliance policy.", no_args_is_help=True
)

T = TypeVar("T")

# Long host lists are cut in the terminal; the full list is one query away.
SHOWN_HOSTS = 20

FileArgument = Annotated[
    Path, typer.Argument(help="Policy file (YAML, format 1).", dir_okay=False, show_default=False)
]
ByOption = Annotated[
    str | None,
    typer.Option("--by", help="Who applies it, for the record. Default: your login name."),
]


def os_user() -> str:
    """The login name to record as who did something; never fails."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER variable and no passwd entry (some containers)
        return "unknown"


def run_graded(coroutine: Coroutine[Any, Any, T]) -> T:
    """run(), and exit 2 if the active policy stored in the database cannot be loaded (say,
    one applied by a newer cmscan)."""
    from policy import PolicyError

    try:
        return run(coroutine)
    except PolicyError as exc:
        fail(
            "the active policy stored in the database cannot be used:\n  "
            + "\n  ".join(exc.problems)
        )


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else "never"


def _load(file: Path) -> Policy:
    """The policy in `file`, or exit 1 listing every problem as file:line:col."""
    from policy import PolicyError, load_policy_file

    try:
        return load_policy_file(file)
    except PolicyError as exc:
        for problem in exc.problems:
            out.print(problem, markup=False)
        count = len(exc.problems)
        err.print(f"{file}: {count} problem{'s' if count != 1 else ''}; the policy is not valid")
        raise typer.Exit(EXIT_FINDINGS) from None


def _summary(policy: Policy) -> str:
    required = sum(1 for rule in policy.rules if rule.severity == "required")
    advisory = len(policy.rules) - required
    return (
        f"{policy.id} ({required} required and {advisory} advisory rules,"
        f" {len(policy.watched_patterns)} watched product patterns)"
    )


@app.command()
def check(file: FileArgument) -> None:
    """Validate a policy file: exit 0 when valid, 1 listing every problem with file:line:col."""
    policy = _load(file)
    out.print(f"{file}: valid policy {_summary(policy)}", markup=False)
    out.print(f"sha256 {policy.content_hash}", markup=False)


@app.command()
def show(
    yaml: Annotated[
        bool, typer.Option("--yaml", help="Print the policy's source instead of a summary.")
    ] = False,
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Show the active policy: id, hash, when and by whom it was applied, and its rules."""
    from store.policies import active_policy_version, get_active_policy

    db = open_database(settings(config, database_url=database))

    async def body() -> tuple[Policy, str]:
        try:
            async with db.read() as session:
                row = await active_policy_version(session)
                policy = await get_active_policy(session)
        finally:
            await db.dispose()
        if row is None:
            return policy, "built-in default (no policy has been applied)"
        return policy, f"{_when(row.applied_at)} by {row.applied_by} (policy version #{row.id})"

    policy, applied = run_graded(body())
    if yaml:
        typer.echo(policy.source, nl=not policy.source.endswith("\n"))
        return
    out.print(f"[bold]{escape(policy.id)}[/]: {escape(policy.title)}", markup=True)
    facts = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    facts.add_row("sha256", policy.content_hash)
    facts.add_row("applied", escape(applied))
    facts.add_row("watches", escape(", ".join(policy.watched_patterns)))
    if policy.access is not None:
        facts.add_row(
            "access",
            escape(f"{policy.access.title}: any of {', '.join(policy.access.granting_codes)}"),
        )
    out.print(facts)
    rules = Table(title="rules", title_justify="left")
    rules.add_column("rule")
    rules.add_column("severity")
    rules.add_column("title")
    for rule in policy.rules:
        rules.add_row(rule.id, rule.severity, escape(rule.title))
    out.print(rules)


_OUTCOME_STYLE = {"pass": "green", "fail": "red", "waived": "yellow", "not applicable": "dim"}


@app.command("explain")
def explain_(
    host: Annotated[str, typer.Argument(help="Host name, short name or address.")],
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Explain the active policy's verdict on one host's stored facts, rule by rule.

    Exits 1 when the host is noncompliant, so that scripts can tell.
    """
    from engine.regrade import missing_patterns
    from policy import evaluate, explain
    from store.policies import get_active_policy
    from store.waivers import active_waivers

    db = open_database(settings(config, database_url=database))
    now = utcnow()

    async def body() -> tuple[str, HostState | None, Policy, set[str]]:
        try:
            async with db.read() as session:
                try:
                    found = await find_host(session, name=host)
                except HostLookupError as exc:
                    fail(str(exc))
                if found is None or found.id is None:
                    fail(f"{host!r} is not in the inventory")
                state = await session.get(HostState, found.id)
                policy = await get_active_policy(session)
                waived = await active_waivers(session, host_ids=[found.id], now=now)
                return found.hostname, state, policy, waived.get(found.id, set())
        finally:
            await db.dispose()

    hostname, state, policy, waived = run_graded(body())
    if state is None or state.facts is None:
        status = state.status if state is not None else "unknown"
        last = f"; last scan: {state.last_outcome}" if state and state.last_outcome else ""
        reason = f" ({state.last_reason})" if state and state.last_reason else ""
        fail(f"{hostname} has no stored facts yet (status {status}{last}{reason})", EXIT_FINDINGS)
    try:
        facts = Facts.model_validate(state.facts)
    except ValidationError:
        fail(f"{hostname}: the stored facts cannot be read by this cmscan; rescan the host")
    verdict = evaluate(policy, facts, waived=waived)
    out.print(f"[bold]{escape(hostname)}[/]: {verdict.status}", markup=True)
    details = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    details.add_row("status", f"{state.status} since {_when(state.status_since)}")
    details.add_row("facts from", _when(state.facts_at))
    details.add_row("policy", escape(f"{policy.label} ({policy.title})"))
    if state.policy_hash and state.policy_hash != policy.content_hash:
        stored = f"from {state.policy_id}@{state.policy_hash[:8]}, not the active one"
        details.add_row("stored verdict", escape(stored))
    out.print(details)
    table = Table()
    table.add_column("rule")
    table.add_column("severity")
    table.add_column("result")
    table.add_column("what it saw")
    for result in explain(policy, facts, waived=waived):
        style = _OUTCOME_STYLE[result.outcome]
        # Facts come from the host: never let them be read as markup.
        seen = escape(result.observed)
        if result.applies is not None:
            seen = f"{seen} [dim](applies: {escape(result.applies)})[/]"
        table.add_row(result.rule.id, result.rule.severity, f"[{style}]{result.outcome}[/]", seen)
    out.print(table)
    unseen = missing_patterns(policy, facts)
    if unseen:
        out.print(
            f"The probe that gathered these facts did not look for {', '.join(unseen)}:"
            " rescan the host before trusting rules about those products.",
            markup=False,
        )
    raise typer.Exit(EXIT_FINDINGS if verdict.status == "noncompliant" else EXIT_OK)


@app.command("apply")
def apply_(
    file: FileArgument,
    rescan: Annotated[
        bool,
        typer.Option(
            "--rescan", help="Queue a rescan of hosts whose facts predate new watched patterns."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; store nothing.")
    ] = False,
    by: ByOption = None,
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Make FILE the active policy for every scanner and re-grade all hosts from stored facts.

    Nothing is rescanned: each host's latest facts are evaluated again, and status changes
    are recorded. Hosts whose last scan failed keep their failure status.
    """
    from engine.regrade import apply_policy

    policy = _load(file)
    db = open_database(settings(config, database_url=database))
    who = by or os_user()

    async def body(db: Database) -> RegradeReport:
        try:
            return await apply_policy(db, policy, applied_by=who, dry_run=dry_run, rescan=rescan)
        finally:
            await db.dispose()

    report = run(body(db))
    _print_report(report, policy, who=who)


def _names(hostnames: list[str]) -> str:
    shown = ", ".join(sorted(hostnames)[:SHOWN_HOSTS])
    more = len(hostnames) - SHOWN_HOSTS
    return shown + (f" and {more} more" if more > 0 else "")


def print_changes(report: RegradeReport) -> None:
    """How many hosts changed status, per CCG."""
    if not report.changed:
        out.print("No host changed status.")
        return
    table = Table(title="status changes by CCG", title_justify="left")
    table.add_column("CCG")
    table.add_column("became compliant", justify="right")
    table.add_column("became noncompliant", justify="right")
    for ccg, counts in sorted(report.by_ccg.items()):
        table.add_row(
            escape(ccg) or "(none)", str(counts.became_compliant), str(counts.became_noncompliant)
        )
    out.print(table)


def _print_report(report: RegradeReport, policy: Policy, *, who: str) -> None:
    if report.dry_run:
        head = f"Dry run: applying {policy.label} would re-grade"
    else:
        head = (
            f"Applied {policy.label} as policy version #{report.policy_version_id} by {who};"
            " re-graded"
        )
    verb = "would change" if report.dry_run else "changed"
    out.print(
        f"{head} {report.regraded} hosts in {report.duration_s:.1f} s;"
        f" {report.changed} {verb} status.",
        markup=False,
    )
    print_changes(report)
    if report.access_gained or report.access_lost:
        out.print(
            f"Dashboard access {verb}: {report.access_gained} user-practice pair(s) gained it,"
            f" {report.access_lost} lost it (cmscan access status).",
            markup=False,
        )
    if report.unreadable:
        out.print(
            f"{len(report.unreadable)} hosts have stored facts this cmscan cannot read and keep"
            f" their verdict until rescanned: {_names(report.unreadable)}",
            markup=False,
        )
    if not report.needs_rescan:
        return
    patterns = ", ".join(report.unseen_patterns)
    out.print(
        f"{len(report.needs_rescan)} hosts were scanned without the watched pattern(s)"
        f" {patterns}; products they match cannot show in those hosts' facts until they are"
        f" rescanned: {_names(report.needs_rescan)}",
        markup=False,
    )
    if report.rescan_request_id is not None:
        out.print(
            f"Queued rescan request #{report.rescan_request_id} for"
            f" {len(report.needs_rescan)} hosts; running scanners will pick it up."
        )
    elif not report.dry_run:
        out.print("Run the command again with --rescan to queue them.")
