"""The latency model behind the ideal wall time, checked by hand and against the simulator."""

from __future__ import annotations

import statistics

import pytest

from bench.sweep_model import HostLatency, describe, ideal, ideal_wall_s, mean_wait
from simulator.behaviour import Fault
from simulator.fleet import FleetOptions, build_fleet

HEALTHY = HostLatency(rtt_s=0.040, exec_s=1.0)


def test_a_healthy_host_waits_for_its_exchanges_and_its_remote_time() -> None:
    # 8 exchanges of 40 ms x 1.025, plus (1 + 0.4) x 1.05 x 1 s of runspace and script.
    assert mean_wait(HEALTHY, exchanges=8, deadline_s=90) == pytest.approx(8 * 0.041 + 1.47)


def test_a_run_time_range_counts_its_middle() -> None:
    host = HostLatency(rtt_s=0.0, exec_s=123.0, exec_range_s=(0.5, 1.5))
    assert mean_wait(host, exchanges=8, deadline_s=90) == pytest.approx(1.4)


def test_faults_cost_what_the_simulator_makes_them_cost() -> None:
    off = HostLatency(0.04, 1.0, fault="powered-off")
    hole = HostLatency(0.04, 1.0, fault="black-hole")
    slow = HostLatency(0.04, 1.0, fault="slow")
    assert mean_wait(off, exchanges=8, deadline_s=90) == 0.0
    assert mean_wait(hole, exchanges=8, deadline_s=90) == 90.0
    assert mean_wait(slow, exchanges=8, deadline_s=90) == pytest.approx(
        8 * mean_wait(HEALTHY, exchanges=8, deadline_s=90)
    )


def test_the_ideal_shares_the_total_wait_but_never_beats_the_slowest_host() -> None:
    assert ideal_wall_s([2.0] * 1000, 250) == pytest.approx(8.0)
    assert ideal_wall_s([2.0, 2.0, 9.0], 256) == 9.0
    assert ideal_wall_s([], 10) == 0.0
    with pytest.raises(ValueError, match="at least 1"):
        ideal_wall_s([1.0], 0)


def test_the_ideal_says_when_a_fault_makes_it_approximate() -> None:
    exact = ideal(
        [HEALTHY, HostLatency(0.04, 1.0, fault="powered-off")],
        exchanges=8,
        concurrency=2,
        deadline_s=90,
    )
    assert exact.exact
    assert exact.mean_wait_s == pytest.approx(mean_wait(HEALTHY, exchanges=8, deadline_s=90) / 2)
    rough = ideal(
        [HostLatency(0.04, 1.0, fault="reset")], exchanges=8, concurrency=1, deadline_s=90
    )
    assert not rough.exact


@pytest.mark.parametrize(("exec_ms", "exec_ms_max"), [(250.0, None), (500.0, 1500.0)])
def test_the_model_matches_the_simulators_own_draws(
    exec_ms: float, exec_ms_max: float | None
) -> None:
    options = FleetOptions(hosts=1, seed=7, rtt_ms=40, exec_ms=exec_ms, exec_ms_max=exec_ms_max)
    host = build_fleet(options).hosts[0]
    draws = [host.timing() for _ in range(20_000)]
    exchanges = 8
    simulated = statistics.fmean(
        exchanges * d.round_trip + d.runspace_open + d.script_run for d in draws
    )
    modelled = mean_wait(
        HostLatency(host.rtt_s, host.exec_s, host.exec_range_s),
        exchanges=exchanges,
        deadline_s=90,
    )
    assert modelled == pytest.approx(simulated, rel=0.01)
    host.fault = Fault.SLOW
    slow = statistics.fmean(d.script_run for d in (host.timing() for _ in range(5_000)))
    assert slow == pytest.approx(8 * statistics.fmean(d.script_run for d in draws), rel=0.03)


def test_describe_states_the_model_and_its_means() -> None:
    model = describe(40, 500, 1500)
    assert model["mean_round_trip_ms"] == pytest.approx(51.25)
    assert model["mean_remote_ms"] == pytest.approx(1400)
    assert "U(500, 1500) ms per run" in str(model["text"])
    assert "per host" in str(describe(10, 250, None)["text"])
