"""The `simulated_fleet` fixture: start a simulated Windows fleet on loopback for any test.

    def test_scan(simulated_fleet):
        fleet = simulated_fleet(hosts=20, faults=0.3, transport="mixed")
        manifest = fleet.manifest()  # sim.json: credentials, ports, expected verdicts
        fleet.apply("install-cm-4.1", ccg=manifest["hosts"][0]["ccg"], fraction=0.5)

The fleet runs in a background thread with its own event loop, so blocking clients (pypsrp)
and async tests both work. Every fleet gets a random 127.N.M.0 block and ephemeral ports, so
test runs on the same machine never collide; all fleets stop when the test ends.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simulator.fleet import FleetOptions, TransportChoice
from simulator.fleet_thread import FleetThread
from simulator.run_options import RunOptions

StartFleet = Callable[..., FleetThread]


def random_loopback_base() -> str:
    """A 127.N.M.0 block well away from 127.0.0.1 and from `cmscan simulate`'s 127.10."""
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.0"


@pytest.fixture
def simulated_fleet(tmp_path: Path) -> Iterator[StartFleet]:
    """A factory: each call starts a fleet (all listeners on ephemeral ports) and returns it."""
    started: list[FleetThread] = []

    def start(
        hosts: int = 10,
        *,
        seed: int = 1,
        mix: str = "mix",
        faults: float = 0.0,
        transport: TransportChoice = "winrm",
        rtt_ms: float = 1.0,
        exec_ms: float = 5.0,
        winrm: bool = True,
        https: bool = True,
        ssh: bool = True,
    ) -> FleetThread:
        options = RunOptions(
            fleet=FleetOptions(
                hosts=hosts,
                seed=seed,
                mix=mix,
                fault_rate=faults,
                rtt_ms=rtt_ms,
                exec_ms=exec_ms,
                base_address=random_loopback_base(),
                transport=transport,
            ),
            out_dir=tmp_path / f"fleet-{len(started)}",
            winrm_port=0 if winrm else None,
            winrm_https_port=0 if https else None,
            ssh_port=0 if ssh else None,
        )
        fleet = FleetThread(options).start()
        started.append(fleet)
        return fleet

    try:
        yield start
    finally:
        for fleet in reversed(started):
            fleet.stop()
