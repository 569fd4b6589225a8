"""How to run a fleet: where its files go, which listeners each host gets, and whose account."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from simulator.fleet import FleetOptions

DEFAULT_USERNAME = "cmscan-scan"


class FleetStartError(Exception):
    """The fleet cannot start as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run a fleet: where its files go and which listeners each host gets.
    A port of None switches that listener off; 0 picks a free port per host."""

    fleet: FleetOptions
    out_dir: Path
    winrm_port: int | None = 5985
    winrm_https_port: int | None = 5986
    ssh_port: int | None = 2222
    admin_port: int = 0
    username: str = DEFAULT_USERNAME

    def __post_init__(self) -> None:
        needed = {
            "winrm": self.winrm_port,
            "winrm-https": self.winrm_https_port,
            "ssh": self.ssh_port,
        }
        transports = needed if self.fleet.transport == "mixed" else [self.fleet.transport]
        for transport in transports:
            if needed[transport] is None:
                raise FleetStartError(f"transport {transport} needs its listener, which is off")
        for name in ("winrm_port", "winrm_https_port", "ssh_port", "admin_port"):
            port = getattr(self, name)
            if port is not None and not 0 <= port <= 65535:
                raise FleetStartError(f"{name.replace('_', '-')} {port} is not a port number")
