"""`cmscan simulate`: a simulated Windows fleet on loopback, to scan, demonstrate and benchmark."""

from __future__ import annotations

import asyncio
import signal
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scanner.cli.common import fail, out

if TYPE_CHECKING:
    from simulator.run_options import RunOptions
    from simulator.runner import RunningFleet

# simulator.fleet.DEFAULT_BASE_ADDRESS, spelt out so that `cmscan --help` loads no simulator code.
DEFAULT_BASE_ADDRESS = "127.10.0.0"


class Mix(StrEnum):
    mix = "mix"
    all_good = "all-good"
    all_bad = "all-bad"


class Transport(StrEnum):
    winrm = "winrm"
    winrm_https = "winrm-https"
    ssh = "ssh"
    mixed = "mixed"


def _port(value: str) -> int | None:
    """A listener port: a number, 0 for a free port per host, or "off"."""
    if value.strip().lower() == "off":
        return None
    if not value.strip().isdigit() or int(value) > 65535:
        raise typer.BadParameter(f"{value!r} is not a port: give 0-65535 or off")
    return int(value)


HELP = (
    "Run a simulated fleet of Windows workstations on loopback until interrupted.\n\n"
    "Every host has its own 127.x address and answers cmscan's probe over WinRM (HTTP with NTLM"
    " message encryption, and HTTPS) and SSH, according to its profile (what it has installed)"
    " and maybe a fault.\n\n"
    "The output directory gets inventory.csv, epraccur.csv, users.csv (a CIM users report of the"
    " practices' smartcard holders), a ready cmscan.toml, the CA and SSH files, and sim.json:"
    " every host's expected verdict, and the admin API's address and token"
    " for changing hosts while they run (installs, reboots, faults, power)."
)

PortOption = Annotated[str, typer.Option(help="Port on every host; 0: a free port per host; off.")]


def simulate(
    hosts: Annotated[int, typer.Option("--hosts", "-n", min=1, help="How many hosts.")] = 100,
    seed: Annotated[int, typer.Option(help="The same seed gives the same fleet.")] = 1,
    profile: Annotated[
        Mix, typer.Option("--profile", help="mix: a realistic estate; all-good; all-bad.")
    ] = Mix.mix,
    faults: Annotated[
        float,
        typer.Option(
            "--faults",
            min=0.0,
            max=1.0,
            help="Share of hosts with a fault (off, black hole, slow, bad credentials, quota,"
            " reset, bad output), e.g. 0.1.",
        ),
    ] = 0.0,
    rtt_ms: Annotated[
        float, typer.Option("--rtt-ms", min=0.0, help="Network round trip per exchange, ms.")
    ] = 10.0,
    exec_ms: Annotated[
        str,
        typer.Option(
            "--exec-ms",
            help="Probe run time on a host, ms (spread host by host), or a range every run is"
            " drawn from, e.g. 500-1500.",
        ),
    ] = "250",
    fault_mix: Annotated[
        str | None,
        typer.Option(
            "--fault-mix",
            help="Exact share of hosts per fault instead of --faults, e.g."
            " powered-off=0.1,slow=0.02.",
        ),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Directory for inventory, config, keys and sim.json.")
    ] = Path("simfleet"),
    transport: Annotated[
        Transport,
        typer.Option(help="What the inventory asks cmscan to use; mixed: a seeded mix of all."),
    ] = Transport.winrm,
    base_address: Annotated[
        str, typer.Option(help="Hosts get loopback addresses counting up from here.")
    ] = DEFAULT_BASE_ADDRESS,
    winrm_port: PortOption = "5985",
    winrm_https_port: PortOption = "5986",
    ssh_port: PortOption = "2222",
    admin_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Admin API port on 127.0.0.1 (0: any free).")
    ] = 0,
) -> None:
    """Run a simulated fleet of Windows workstations on loopback until interrupted."""
    from simulator.fleet import FleetOptions
    from simulator.option_parsers import parse_exec_ms, parse_fault_mix
    from simulator.run_options import FleetStartError, RunOptions

    try:
        exec_low, exec_high = parse_exec_ms(exec_ms)
        options = RunOptions(
            fleet=FleetOptions(
                hosts=hosts,
                seed=seed,
                mix=profile.value,
                fault_rate=faults,
                rtt_ms=rtt_ms,
                exec_ms=exec_low,
                exec_ms_max=exec_high,
                fault_mix=parse_fault_mix(fault_mix) if fault_mix is not None else {},
                base_address=base_address,
                transport=transport.value,
            ),
            out_dir=out_dir,
            winrm_port=_port(winrm_port),
            winrm_https_port=_port(winrm_https_port),
            ssh_port=_port(ssh_port),
            admin_port=admin_port,
        )
    except (ValueError, FleetStartError) as exc:
        fail(str(exc))
    try:
        asyncio.run(_serve(options))
    except FleetStartError as exc:
        fail(str(exc))


async def _serve(options: RunOptions) -> None:
    from simulator.runner import run_fleet

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    out.print(f"Starting {options.fleet.hosts} simulated hosts...")
    started = time.monotonic()
    async with run_fleet(options) as running:
        _describe(running, time.monotonic() - started)
        await stop.wait()
        out.print("Stopping...")
    out.print("Stopped.")


def _describe(running: RunningFleet, seconds: float) -> None:
    fleet, opts, paths = running.fleet, running.options, running.files
    root = paths.root.resolve()
    faulty = sum(h.fault is not None for h in fleet)
    listeners = ", ".join(
        f"{name} {'any free port' if port == 0 else port}"
        for name, port in (
            ("WinRM", opts.winrm_port),
            ("WinRM HTTPS", opts.winrm_https_port),
            ("SSH", opts.ssh_port),
        )
        if port is not None
    )
    out.print(
        f"{len(fleet)} hosts up in {seconds:.1f} s (seed {fleet.options.seed},"
        f" profile {fleet.options.mix}, {faulty} with faults),"
        f" {fleet.hosts[0].address} to {fleet.hosts[-1].address}"
    )
    out.print(f"Listening on every host: {listeners}")
    out.print(f"Admin API: {running.admin_url} (bearer token in sim.json)")
    out.print(f"Files in {root}: inventory.csv, epraccur.csv, users.csv, cmscan.toml, sim.json")
    out.print("Scan it from another terminal:")
    out.print(f"  export CMSCAN_CONFIG={paths.config.resolve()}")
    out.print(
        f"  cmscan inventory import {paths.inventory.resolve()} --ods {paths.epraccur.resolve()}"
    )
    out.print(f"  cmscan access import {paths.users_report.resolve()}")
    out.print("  cmscan scan")
    out.print("Press Ctrl-C to stop.")
