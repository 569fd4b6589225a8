"""`cmscan db`: schema migrations."""

from __future__ import annotations

import typer

from scanner.cli.common import ConfigOption, DbOption, database_failed, out, settings
from store import db

app = typer.Typer(help="Database schema commands.", no_args_is_help=True)


@app.command()
def upgrade(config: ConfigOption = None, database: DbOption = None) -> None:
    """Create or upgrade the database schema to the newest revision.

    cmscan upgrades automatically whenever a command opens the database; this command is for
    doing it ahead of time (for example before starting several daemons on PostgreSQL).
    """
    current = settings(config, database_url=database)
    try:
        before = db.current_revision(current.database_url)
        db.upgrade(current.database_url)
        after = db.current_revision(current.database_url)
    except db.DatabaseError as exc:
        database_failed(exc)
    where = db.redact(current.database_url)
    if before == after:
        out.print(f"{where}: schema is current (revision {after})")
    else:
        out.print(f"{where}: upgraded schema from {before or 'empty'} to {after}")
