"""What every command shares: settings loading, database opening, exit codes and error output."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from config.settings import Settings, SettingsError, load_settings
from store import db

if TYPE_CHECKING:
    from inventory.problems import Problem

EXIT_OK = 0
EXIT_FINDINGS = 1  # findings or errors in data: bad inventory rows, hosts that failed to scan
EXIT_USAGE = 2  # usage or configuration errors, including an unusable database
EXIT_UNAVAILABLE = 75  # EX_TEMPFAIL: the database did not answer; trying later may work

T = TypeVar("T")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="CMSCAN_CONFIG",
        help="Config file (TOML). Default: ./cmscan.toml when it exists.",
        dir_okay=False,
        show_default=False,
    ),
]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL, e.g. sqlite:///./cmscan.db or postgresql://user@host/cmscan."
        " Overrides database_url and CMSCAN_DATABASE_URL.",
        show_default=False,
    ),
]


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print an error for a person and leave with the given exit code.

    `message` is plain text, never markup: it quotes file names, host names and settings
    such as [credentials.NAME] as they are.
    """
    err.print("[bold red]error:[/] ", end="", markup=True)
    err.print(message, markup=False)
    raise typer.Exit(code)


def settings(config: Path | None, **flags: Any) -> Settings:
    """Load settings from file, environment and the given flags, or exit 2 listing every problem."""
    try:
        return load_settings(config_file=config, overrides=flags)
    except SettingsError as exc:
        err.print("[bold red]error:[/] invalid settings", markup=True)
        for problem in exc.problems:
            err.print(f"  - {problem}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None


def database_failed(exc: db.DatabaseError) -> NoReturn:
    """Say why the database cannot be used; exit 75 if it may answer later, else 2.

    The distinction lets a service manager restart the daemon when PostgreSQL is still
    starting at boot, and not when the configuration itself is wrong.
    """
    fail(str(exc), EXIT_UNAVAILABLE if isinstance(exc, db.DatabaseUnavailableError) else EXIT_USAGE)


def open_database(current: Settings) -> db.Database:
    """Upgrade the schema if needed and open the database, or exit saying why not."""
    try:
        db.upgrade(current.database_url)
        return db.Database(current.database_url)
    except db.DatabaseError as exc:
        database_failed(exc)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's async body; a database that fails mid-command exits with its reason."""
    try:
        return asyncio.run(coroutine)
    except db.DatabaseError as exc:
        database_failed(exc)


def print_problems(problems: list[Problem]) -> None:
    """Problems found in a file, in file order, each as `severity: file:line: message`."""
    for problem in sorted(problems, key=lambda p: p.sort_key):
        style = "red" if problem.severity == "error" else "yellow"
        err.print(f"[{style}]{problem.severity}:[/] ", end="", markup=True)
        err.print(str(problem), markup=False, highlight=False)
