"""The cmscan command line: one typer app, one module per command group.

Command modules import their heavy machinery (FastAPI, pypsrp, asyncssh, the simulator)
inside the commands that need it, so that `cmscan --help` and quick commands start fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from scanner import __version__
from scanner.cli import (
    access,
    api_tokens,
    credentials,
    daemon,
    database,
    demo,
    export,
    instances,
    inventory,
    metrics,
    policy,
    probe,
    rescan,
    scan,
    simulate,
    status,
    waive,
)

app = typer.Typer(
    name="cmscan",
    help="Agentless compliance scanner for NHS smartcard readiness on Windows fleets.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cmscan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Agentless compliance scanner for NHS smartcard readiness on Windows fleets."""


app.command("demo")(demo.demo)
app.command("daemon")(daemon.daemon)
app.command("scan")(scan.scan)
app.command("rescan")(rescan.rescan)
app.add_typer(credentials.app, name="credentials")
app.add_typer(database.app, name="db")
app.add_typer(inventory.app, name="inventory")
app.add_typer(policy.app, name="policy")
app.command("waive")(waive.waive)
app.command("probe")(probe.probe)
app.command("simulate", help=simulate.HELP)(simulate.simulate)
app.command("status")(status.status)
app.command("instances")(instances.instances)
app.add_typer(access.app, name="access")
app.add_typer(export.app, name="export")
app.add_typer(metrics.app, name="metrics")
app.add_typer(api_tokens.app, name="api")


def main() -> None:
    app()
