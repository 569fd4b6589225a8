"""`cmscan credentials`: see the credential profiles and lift lockout-guard suspensions."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from engine.credential_book import CredentialBook
from scanner.cli.common import (
    EXIT_FINDINGS,
    ConfigOption,
    DbOption,
    open_database,
    out,
    run,
    settings,
)
from store import db
from store.model import utcnow
from store.suspensions import active_suspensions, resume_profile

app = typer.Typer(help="Credential profiles and the lockout guard.", no_args_is_help=True)


@app.command("list")
def list_(config: ConfigOption = None, database: DbOption = None) -> None:
    """Each configured profile: account, authentication, where its secret comes from, and
    whether the lockout guard suspended it."""
    current = settings(config, database_url=database)
    open_database(current)

    async def suspended() -> dict[str, str]:
        base = db.Database(current.database_url)
        try:
            async with base.read() as session:
                return {
                    s.profile: f"suspended since {s.at:%Y-%m-%d %H:%M} UTC: {s.reason}"
                    for s in await active_suspensions(session, now=utcnow())
                }
        finally:
            await base.dispose()

    suspensions = run(suspended())
    book = CredentialBook(current.credentials)
    table = Table(title="Credential profiles")
    for heading in ("profile", "username", "auth", "secret from", "state"):
        table.add_column(heading)
    for name in sorted({*book.names, *suspensions}):
        profile = current.credentials.get(name)
        source = "-"
        if profile is not None:
            source = (
                f"env {profile.password_env}"
                if profile.password_env
                else f"file {profile.password_file}"
                if profile.password_file
                else "ticket cache / key"
            )
        state = suspensions.get(name) or book.problems.get(name) or "ok"
        table.add_row(
            name,
            profile.username or "-" if profile else "-",
            profile.auth if profile else "-",
            source,
            state,
        )
    out.print(table)


@app.command()
def resume(
    profile: Annotated[str, typer.Argument(help="The suspended credential profile.")],
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Lift a lockout-guard suspension once the account is fixed (unlocked, password updated).

    Running daemons pick this up within seconds and try the profile again carefully: a few
    hosts first, full speed only after one succeeds.
    """
    current = settings(config, database_url=database)
    open_database(current)

    async def lift() -> bool:
        base = db.Database(current.database_url)
        try:
            async with base.write() as session:
                return await resume_profile(session, profile=profile)
        finally:
            await base.dispose()

    if not run(lift()):
        out.print(f"credential profile {profile!r} is not suspended")
        raise typer.Exit(EXIT_FINDINGS)
    out.print(f"credential profile {profile!r} resumed")
