"""Reading results back (cmscan's outcome line, baselines' facts) and rendering the tables."""

from __future__ import annotations

import json

import pytest

from bench.baselines.cmscan_sweep import parse_outcomes
from bench.sweep_report import (
    Ratio,
    Run,
    bound,
    failure_outcomes,
    markdown,
    ratios,
    results_table,
    summarise,
    verified_facts,
)
from collectors.probe import probe_script
from simulator.fleet import FleetOptions, build_fleet

PATTERNS = ("NHS *", "*Oberthur*")


def _facts(patterns: tuple[str, ...] = PATTERNS) -> str:
    host = build_fleet(FleetOptions(hosts=1, seed=3)).hosts[0]
    return host.run_script(probe_script(), {"Patterns": list(patterns)}).output


def _run(
    tool: str, repeat: int, wall: float, cpu: float, hosts: int = 1000, **extra: object
) -> Run:
    fields: dict[str, object] = {
        "tool": tool,
        "label": tool.upper(),
        "transport": "winrm",
        "hosts": hosts,
        "concurrency": 256,
        "repeat": repeat,
        "exit_code": 1,
        "wall_s": wall,
        "cpu_s": cpu,
        "max_rss_mib": 100.0,
        "tree_peak_rss_mib": 100.0,
        "processes": 1,
        "outcomes": {"ok": 900, "unreachable": 100},
        "expected_ok": 900,
        "facts_verified": 900,
        "ideal_s": 10.0,
        "ideal_exact": True,
        "exchanges": 8,
        "simulator_cpu_s": 2.0,
        **extra,
    }
    return Run(**fields)  # type: ignore[arg-type]


def test_parse_outcomes_reads_the_last_outcomes_line() -> None:
    stdout = "Scanned 10 of 10 hosts\n...\noutcomes: auth_failed 2, ok 91, unreachable 7\n"
    assert parse_outcomes(stdout) == {"auth_failed": 2, "ok": 91, "unreachable": 7}
    assert parse_outcomes("outcomes: ok 1\noutcomes: ok 3\n") == {"ok": 3}
    assert parse_outcomes("outcomes: none\n") == {}


@pytest.mark.parametrize(
    ("stdout", "message"),
    [("Scanned 0 of 0 hosts\n", "no 'outcomes:' line"), ("outcomes: ok many\n", "cannot read")],
)
def test_parse_outcomes_refuses_what_it_cannot_read(stdout: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_outcomes(stdout)


def test_only_real_facts_with_the_right_patterns_count() -> None:
    outputs = {
        "good": _facts(),
        "wrong-patterns": _facts(("*",)),
        "truncated": _facts()[:300],
        "nothing": "",
    }
    good, problems = verified_facts(outputs, PATTERNS)
    assert good == 1
    assert len(problems) == 3
    assert any(p.startswith("wrong-patterns: probe ran with patterns ['*']") for p in problems)
    assert all(not p.startswith("good") for p in problems)


def test_failure_outcomes_count_each_kind() -> None:
    failures = {"a": "unreachable: refused", "b": "error: rc=1", "c": "unreachable: x"}
    assert failure_outcomes(failures) == {"unreachable": 2, "error": 1}


@pytest.mark.parametrize(
    ("scanner", "simulator", "over", "expected"),
    [
        (0.97, 0.5, 3.0, "scanner CPU"),
        (0.4, 0.9, 3.0, "simulator CPU"),
        (0.4, 0.3, 1.1, "network latency"),
        (0.4, 0.3, 2.5, "waiting: neither core saturated"),
    ],
)
def test_bound_names_what_limited_the_sweep(
    scanner: float, simulator: float, over: float, expected: str
) -> None:
    assert bound(scanner, simulator, over) == expected


def test_a_busy_core_counts_even_when_other_work_kept_it_busy() -> None:
    assert bound(0.6, 0.2, 3.0, scanner_core_busy=0.97) == "scanner's core, shared with other work"
    assert bound(0.84, 0.2, 3.0, scanner_core_busy=0.86) == "scanner CPU"
    assert bound(0.6, 0.2, 3.0, simulator_core_busy=0.9) == (
        "simulator's core, shared with other work"
    )
    assert bound(0.6, 0.2, 1.1, scanner_core_busy=0.7, simulator_core_busy=0.5) == (
        "network latency"
    )


def test_a_run_derives_its_rates_and_round_trips_through_json() -> None:
    run = _run("cmscan-winrm", 1, wall=20.0, cpu=15.0)
    assert run.hosts_per_s == 50.0
    assert run.cpu_ms_per_host == 15.0
    assert run.wall_over_ideal == 2.0
    assert run.bound == "waiting: neither core saturated"
    assert run.mean_in_flight is None
    assert run.probe_stretch is None
    data = json.loads(json.dumps(run.to_json()))
    assert data["hosts_per_s"] == 50.0
    assert Run.from_json(data) == run


def test_a_run_says_how_many_probes_were_in_flight_and_how_stretched_they_were() -> None:
    run = _run(
        "cmscan-winrm",
        1,
        wall=20.0,
        cpu=15.0,
        probe_s=3.0,
        model_probe_s=1.5,
        probe_s_sum=2000.0,
        probing_s=16.0,
    )
    assert run.mean_in_flight == 125.0
    assert run.probe_stretch == 2.0
    assert run.to_json()["mean_in_flight"] == 125.0


def test_summaries_take_medians_and_keep_the_range() -> None:
    runs = [
        _run("cmscan-winrm", 1, wall=20.0, cpu=15.0),
        _run("cmscan-winrm", 2, wall=30.0, cpu=16.0, facts_verified=899),
        _run("cmscan-winrm", 3, wall=25.0, cpu=20.0),
        _run("pywinrm", 1, wall=40.0, cpu=30.0),
    ]
    first, second = summarise(runs)
    assert (first.tool, first.runs, second.tool, second.runs) == ("cmscan-winrm", 3, "pywinrm", 1)
    assert (first.wall_s, first.wall_min_s, first.wall_max_s) == (25.0, 20.0, 30.0)
    assert first.cpu_ms_per_host == 16.0
    assert first.ok_min == 899


def test_ratios_pair_runs_made_side_by_side() -> None:
    runs = [
        _run("cmscan-winrm", 1, wall=20.0, cpu=10.0),
        _run("pywinrm", 1, wall=40.0, cpu=40.0),
        _run("cmscan-winrm", 2, wall=30.0, cpu=10.0),
        _run("pywinrm", 2, wall=30.0, cpu=20.0),
        _run("cmscan-winrm", 1, wall=10.0, cpu=5.0, hosts=500),  # no Ansible run to pair with
        _run("paramiko", 1, wall=9.0, cpu=9.0),  # no cmscan SSH run to pair with
    ]
    found = ratios(runs, [("cmscan-winrm", "pywinrm"), ("cmscan-ssh", "paramiko")])
    assert found == [
        Ratio("cmscan-winrm", "pywinrm", 1000, 2, 1.5, 1.0, 2.0, 0.375, 0.25, 0.5),
    ]


def test_the_results_table_has_a_row_per_tool() -> None:
    runs = [
        _run("cmscan-winrm", 1, wall=20.0, cpu=15.0),
        _run("ansible", 1, wall=100.0, cpu=90.0, hosts=500, tree_peak_rss_mib=1200.0),
    ]
    table = results_table(summarise(runs)).splitlines()
    assert table[0].startswith("| tool | hosts | concurrency | runs | wall s | hosts/s |")
    assert len(table) == 4
    assert table[2] == (
        "| CMSCAN-WINRM | 1,000 | 256 | 1 | 20.0 | 50.0 | 15.0 | 100 | 900 / 900 | 2.00 | –"
        " | – | 75% | 10% | waiting: neither core saturated |"
    )
    assert "| 100 (all processes 1200) |" in table[3]
    timed = _run(
        "cmscan-winrm",
        1,
        wall=20.0,
        cpu=15.0,
        probe_s=3.0,
        model_probe_s=1.5,
        probe_s_sum=2000.0,
        probing_s=16.0,
        scanner_core_busy=0.9,
    )
    row = results_table(summarise([timed])).splitlines()[2]
    assert "| 3.00 (1.50) | 125 | 75% (90%) | 10% |" in row


def test_markdown_states_the_conditions_before_the_numbers() -> None:
    runs = [_run("cmscan-winrm", 1, wall=20.0, cpu=15.0), _run("pywinrm", 1, wall=40.0, cpu=40.0)]
    document = {
        "title": "A comparison",
        "started": "2026-01-01T00:00:00+00:00",
        "machine": {
            "cpu_model": "Test CPU",
            "cores": 2,
            "ram_gib": 24.0,
            "kernel": "Linux 6",
            "load_average_at_start": [0.5, 0.4, 0.3],
        },
        "versions": {"python": "3.11.7", "ansible-core": None},
        "pinning": "simulator pinned to CPU 0",
        "latency_model": {
            "text": "round trip 40 ms",
            "mean_round_trip_ms": 51.25,
            "mean_remote_ms": 1400.0,
        },
        "fault_mix_text": "powered-off 10%",
        "seed": 1,
        "runs": [r.to_json() for r in runs],
        "ratios": [],
        "targets": [{"what": "wall", "measured": "20 s", "target": "under 90 s", "verdict": "met"}],
        "notes": ["a note"],
    }
    text = markdown(document)
    lines = text.splitlines()
    assert lines[0] == "# A comparison"
    assert "Test CPU, 2 cores, 24.0 GiB RAM, Linux 6" in text
    assert "Versions: python 3.11.7." in text  # versions not installed are left out
    assert "Fault mix: powered-off 10%. Seed 1." in text
    assert "- wall: 20 s (target under 90 s): met" in text
    assert text.index("Latency model") < text.index("| tool |")
    assert text.endswith("- a note\n")
