"""`cmscan demo`: the whole system on a simulated fleet, in one command."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from scanner.cli.common import EXIT_OK, fail, out


def demo(
    hosts: Annotated[int, typer.Option("--hosts", min=1, max=5000, help="Simulated hosts.")] = 600,
    seed: Annotated[int, typer.Option("--seed", help="The same seed gives the same fleet.")] = 1,
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the database, config, CSV and logs go.")
    ] = Path("cmscan-demo"),
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=5, help="Stop after SECONDS (default: Ctrl-C)."),
    ] = None,
) -> None:
    """Run cmscan against a simulated fleet: scan it, watch compliance per CCG, fix machines.

    Starts a simulated fleet of Windows workstations on loopback, imports its inventory into a
    fresh SQLite database, runs the daemon (API and /metrics on 127.0.0.1), shows a live view,
    writes unpatched.csv after the first sweep, and every few seconds "deploys" Credential
    Management, middleware or a reboot to some noncompliant machines so you can watch
    compliance rise. Everything is left in --dir for you to explore.
    """
    from exporters.http import ListenError
    from scanner.daemon import DaemonError
    from scanner.demo.fleet import FleetError
    from scanner.demo.run import Demo, DemoError, DemoOptions

    options = DemoOptions(hosts=hosts, seed=seed, directory=directory, duration=duration)
    runner = Demo(options, out)
    try:
        result = asyncio.run(runner.run())
    except (FleetError, DaemonError, ListenError, DemoError) as exc:
        fail(str(exc))
    share = result.snapshot.compliant_share
    out.print()
    out.print("[bold]cmscan demo stopped.[/]")
    if result.first_sweep_s is not None:
        compliant = f"; compliant now: {share:.0%}" if share is not None else ""
        out.print(f"  first full sweep took {result.first_sweep_s:.0f} s from start{compliant}")
    out.print(f"  config:    {result.config}")
    out.print(f"  database:  {result.config.parent / 'cmscan.db'}")
    if result.unpatched_csv is not None:
        out.print(f"  unpatched: {result.unpatched_csv}")
    out.print(f"  log:       {result.log}")
    out.print(f"  try:       CMSCAN_CONFIG={result.config} cmscan status")
    raise typer.Exit(EXIT_OK)
