"""Open files: how many a fleet's listeners and clients need, and raising the limit to match."""

from __future__ import annotations

import resource

from simulator.run_options import FleetStartError

# File descriptors a fleet needs besides its listeners: the loop, logs, key files, clients.
FD_BASELINE = 256


def descriptors_needed(hosts: int, listeners_per_host: int) -> int:
    """Open files a fleet of `hosts` needs: its listeners plus room for clients' connections."""
    return hosts * listeners_per_host + min(hosts, 4096) + FD_BASELINE


def raise_file_limit(needed: int) -> int:
    """Raise RLIMIT_NOFILE's soft limit to `needed`, or say plainly why that is impossible."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise FleetStartError(
            f"this fleet needs about {needed} open files but the hard limit is {hard}: raise it"
            f" (ulimit -Hn {needed} as root, or LimitNOFILE={needed} for a service) or start"
            " fewer hosts"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed
