"""Fleet options the benchmarks need: an exact fault mix, a probe run-time range, and the probe
sent as its one-line invocation over any transport (as Ansible's raw command over PSRP does)."""

from __future__ import annotations

import collections
import json

import pytest
from typer.testing import CliRunner

from collectors.probe import probe_script, stdin_invocation
from scanner.cli import app
from simulator.behaviour import Fault
from simulator.fleet import FleetOptions, build_fleet
from simulator.option_parsers import parse_exec_ms, parse_fault_mix

PATTERNS = ("NHS *", "*Oberthur*")


def test_a_fault_mix_gives_exactly_its_shares_and_no_other_fault() -> None:
    options = FleetOptions(hosts=1000, seed=3, fault_mix={Fault.POWERED_OFF: 0.1, Fault.SLOW: 0.02})
    faults = collections.Counter(h.fault for h in build_fleet(options))
    assert faults == {None: 880, Fault.POWERED_OFF: 100, Fault.SLOW: 20}


def test_a_fault_mix_is_reproducible_and_read_only() -> None:
    options = FleetOptions(hosts=200, seed=5, fault_mix={"powered-off": 0.25})  # type: ignore[dict-item]
    first = [h.hostname for h in build_fleet(options) if h.fault]
    assert first == [h.hostname for h in build_fleet(options) if h.fault]
    assert len(first) == 50
    with pytest.raises(TypeError):
        options.fault_mix[Fault.SLOW] = 0.5  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("powered-off", "is not FAULT=SHARE"),
        ("powered-off=lots", "is not FAULT=SHARE"),
        ("powered-off=nan", "is not FAULT=SHARE"),
        ("asleep=0.1", "unknown fault 'asleep'"),
        ("slow=1.5", "slow=1.5 is not between 0 and 1"),
        ("slow=0.6,reset=0.6", "adds up to 1.2"),
        ("slow=0.1,slow=0.2", "given twice"),
    ],
)
def test_a_bad_fault_mix_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fault_mix(text)


def test_a_fault_rate_and_a_fault_mix_do_not_mix() -> None:
    with pytest.raises(ValueError, match="not both"):
        FleetOptions(hosts=10, fault_rate=0.1, fault_mix={Fault.SLOW: 0.1})


def test_parse_fault_mix_reads_several_faults() -> None:
    assert parse_fault_mix(" powered-off=0.1, black-hole=0.01 ,") == {
        Fault.POWERED_OFF: 0.1,
        Fault.BLACK_HOLE: 0.01,
    }


def test_an_exec_range_bounds_every_draw() -> None:
    host = build_fleet(FleetOptions(hosts=1, seed=2, exec_ms=500, exec_ms_max=1500)).hosts[0]
    draws = [host.timing() for _ in range(300)]
    assert all(0.5 <= d.script_run <= 1.5 for d in draws)
    assert all(0.2 <= d.runspace_open <= 0.6 for d in draws)
    runs = [d.script_run for d in draws]
    assert min(runs) < 0.7  # the whole range is used
    assert max(runs) > 1.3
    assert host.machine.duration_ms in range(700, 1401)  # typical: the middle, spread per host


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("250", (250.0, None)), ("500-1500", (500.0, 1500.0)), (" 0 - 10 ", (0.0, 10.0))],
)
def test_parse_exec_ms(text: str, parsed: tuple[float, float | None]) -> None:
    assert parse_exec_ms(text) == parsed


@pytest.mark.parametrize("text", ["", "fast", "-5", "1500-500", "inf", "5-x"])
def test_a_bad_exec_ms_says_what_is_wrong(text: str) -> None:
    with pytest.raises(ValueError, match="run time"):
        parse_exec_ms(text)


def test_a_backwards_exec_range_is_refused_by_the_options_too() -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        FleetOptions(hosts=1, exec_ms=900, exec_ms_max=100)


def test_simulate_refuses_bad_benchmark_options_saying_why(tmp_path: object) -> None:
    runner = CliRunner()
    bad_mix = runner.invoke(app, ["simulate", "--fault-mix", "asleep=0.1", "--out", str(tmp_path)])
    assert bad_mix.exit_code == 2
    assert "unknown fault 'asleep'" in bad_mix.output
    bad_exec = runner.invoke(app, ["simulate", "--exec-ms", "9-1", "--out", str(tmp_path)])
    assert bad_exec.exit_code == 2
    assert "ends before it starts" in bad_exec.output
    both = runner.invoke(
        app,
        ["simulate", "--faults", "0.1", "--fault-mix", "slow=0.1", "--out", str(tmp_path)],
    )
    assert both.exit_code == 2
    assert "not both" in both.output


@pytest.mark.parametrize("after", ["", "\nexit $LASTEXITCODE", "\r\nexit\r\n", "\nEXIT 0;"])
def test_the_one_line_invocation_runs_the_probe_with_its_patterns(after: str) -> None:
    host = build_fleet(FleetOptions(hosts=1, seed=4)).hosts[0]
    line = stdin_invocation(probe_script(), PATTERNS).strip()
    result = host.run_script(line + after, {})
    assert result.error is None
    document = json.loads(result.output)
    assert document["probe"]["patterns"] == list(PATTERNS)
    assert result.output == host.run_script(probe_script(), {"Patterns": list(PATTERNS)}).output


def test_an_invocation_followed_by_other_statements_is_not_taken_for_the_probe() -> None:
    host = build_fleet(FleetOptions(hosts=1, seed=4)).hosts[0]
    line = stdin_invocation(probe_script(), PATTERNS).strip()
    result = host.run_script(line + "\nRemove-Item C:\\ -Recurse", {})
    assert result.error is not None
    assert "is not recognized" in result.error.message
