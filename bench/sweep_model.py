"""The sweep benchmark's latency model: what each simulated host costs a client in waiting, and
the latency-bound ideal wall time of a sweep (hosts x mean per-host latency / concurrency).

The numbers mirror `SimHost.timing()` in simulator/fleet.py. Each host draws, once, its own
base round trip `rtt_ms x U(0.5, 2.0)` and (without a range) its own base run time
`exec_ms x U(0.6, 1.6)`. Every request/response exchange then waits `base_rtt x U(0.8, 1.25)`;
opening the runspace (or shell) waits `0.4 x base_exec x U(0.7, 1.4)` and the script runs
`base_exec x U(0.7, 1.4)`. With a run-time range LO-HI the script runs `U(LO, HI)` and the
runspace opens in `0.4 x U(LO, HI)`. A host with the `slow` fault takes 8 times as long.

So one probe of a healthy host waits, on average,

    exchanges x 1.025 x base_rtt  +  1.4 x 1.05 x base_exec      (1.4 x (LO + HI) / 2 with a range)

where `exchanges` is how many round trips the client makes (measured against the simulator:
pypsrp 8 HTTP requests, pywinrm 9, Ansible's psrp 8; asyncssh 5 and paramiko 4 delayed SSH
steps). A switched-off host refuses at once on loopback and costs nothing; a black hole costs
the client's whole deadline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

RTT_JITTER = (0.8 + 1.25) / 2
EXEC_JITTER = (0.7 + 1.4) / 2
RUNSPACE_SHARE = 0.4
SLOW_FACTOR = 8.0  # simulator.fleet.SLOW_FACTOR

POWERED_OFF = "powered-off"
BLACK_HOLE = "black-hole"
SLOW = "slow"
# Faults whose cost the model knows exactly; others end somewhere inside a probe, so the
# healthy cost is charged (an upper bound, which flatters the measured/ideal ratio).
EXACT_FAULTS = frozenset({POWERED_OFF, BLACK_HOLE, SLOW})


@dataclass(frozen=True, slots=True)
class HostLatency:
    """One simulated host's latency parameters, as its fleet drew them."""

    rtt_s: float
    exec_s: float
    exec_range_s: tuple[float, float] | None = None
    fault: str | None = None


def mean_wait(host: HostLatency, *, exchanges: int, deadline_s: float) -> float:
    """The mean time one probe of `host` spends waiting, for a client making `exchanges`."""
    if host.fault == POWERED_OFF:
        return 0.0
    if host.fault == BLACK_HOLE:
        return deadline_s
    network = exchanges * RTT_JITTER * host.rtt_s
    if host.exec_range_s is None:
        remote = (1 + RUNSPACE_SHARE) * EXEC_JITTER * host.exec_s
    else:
        low, high = host.exec_range_s
        remote = (1 + RUNSPACE_SHARE) * (low + high) / 2
    scale = SLOW_FACTOR if host.fault == SLOW else 1.0
    return scale * (network + remote)


def ideal_wall_s(waits: Sequence[float], concurrency: int) -> float:
    """The fastest a sweep can be if waiting is all it does: the total wait shared by
    `concurrency` probes at once, and never shorter than the slowest single host."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if not waits:
        return 0.0
    return max(sum(waits) / concurrency, max(waits))


@dataclass(frozen=True, slots=True)
class Ideal:
    """The latency-bound ideal of one sweep, with what it was derived from."""

    wall_s: float
    mean_wait_s: float
    exact: bool  # False when a fault with an approximate cost is in the fleet


def ideal(
    hosts: Iterable[HostLatency], *, exchanges: int, concurrency: int, deadline_s: float
) -> Ideal:
    """The ideal wall time of probing every host once at `concurrency`."""
    listed = list(hosts)
    waits = [mean_wait(h, exchanges=exchanges, deadline_s=deadline_s) for h in listed]
    exact = all(h.fault is None or h.fault in EXACT_FAULTS for h in listed)
    mean = sum(waits) / len(waits) if waits else 0.0
    return Ideal(wall_s=ideal_wall_s(waits, concurrency), mean_wait_s=mean, exact=exact)


def describe(rtt_ms: float, exec_ms: float, exec_ms_max: float | None) -> dict[str, object]:
    """The latency model in words and numbers, for the results file."""
    if exec_ms_max is None:
        run = f"probe run time {exec_ms:g} ms x U(0.6, 1.6) per host x U(0.7, 1.4) per run"
        mean_run = exec_ms * 1.1 * EXEC_JITTER
    else:
        run = f"probe run time U({exec_ms:g}, {exec_ms_max:g}) ms per run"
        mean_run = (exec_ms + exec_ms_max) / 2
    return {
        "rtt_ms": rtt_ms,
        "exec_ms": exec_ms,
        "exec_ms_max": exec_ms_max,
        "text": (
            f"round trip {rtt_ms:g} ms x U(0.5, 2.0) per host x U(0.8, 1.25) per exchange; {run};"
            " runspace opening 0.4 x the run time"
        ),
        "mean_round_trip_ms": round(rtt_ms * 1.25 * RTT_JITTER, 2),
        "mean_remote_ms": round((1 + RUNSPACE_SHARE) * mean_run, 1),
    }
