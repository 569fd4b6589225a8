"""Sweep benchmark: cmscan's one-shot sweep of a simulated fleet, side by side with what an IT
team would use instead, measured process by process.

    .venv/bin/python bench/sweep.py compare            # make bench: 1,000 hosts, every tool
    .venv/bin/python bench/sweep.py series             # cmscan at 100, 1,000, 5,000, 10,000 hosts
    .venv/bin/python bench/sweep.py preset             # the daemon issue's 5,000-host benchmark

The simulated fleet (`cmscan simulate`) runs in its own process pinned to one core; each tool
runs in another process pinned to the other core (where the machine has two). For each run
the fleet's inventory goes into a fresh database (not timed), then the tool sweeps every host
once. CPU time and peak RSS come from os.wait4 on the tool's process, which also counts every
child it waited for (Ansible's forks). The simulator's CPU over the same interval shows
whether it, rather than the tool, was the limit. Every tool's answers are checked: the facts
must parse and carry the policy's patterns.

Results go to bench/results/sweep-<mode>.json, .md and .png; see bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import sweep_model, sweep_proc, sweep_profile, sweep_report  # noqa: E402
from bench.baselines import cmscan_sweep  # noqa: E402
from bench.baselines.common import Host, Outputs, Targets  # noqa: E402
from policy import default_policy  # noqa: E402
from simulator.fleet import FleetOptions, build_fleet  # noqa: E402
from simulator.option_parsers import parse_exec_ms, parse_fault_mix  # noqa: E402

RESULTS = ROOT / "bench" / "results"
ANSIBLE = ROOT / "bench" / ".venv-ansible" / "bin" / "ansible"
PRESET_TARGET_WALL_S = 90.0
PRESET_TARGET_RSS_MIB = 600.0


@dataclass(frozen=True, slots=True)
class Tool:
    """One way of sweeping the fleet, and what the latency model needs to know about it."""

    name: str
    label: str
    transport: str  # which of the simulator's endpoints it uses: winrm or ssh
    exchanges: int  # round trips one probe makes (measured against the simulator)
    deadline_s: float  # what a host that never answers costs it
    module: str | None = None  # the baseline script; None for cmscan itself


TOOLS = {
    t.name: t
    for t in (
        Tool("cmscan-winrm", "cmscan scan, WinRM (event loop)", "winrm", 7, 90.0),
        Tool(
            "pywinrm",
            "pywinrm thread pool",
            "winrm",
            9,
            30.0,
            "bench.baselines.pywinrm_pool",
        ),
        Tool("ansible", "Ansible raw over psrp", "winrm", 8, 30.0, "bench.baselines.ansible_psrp"),
        Tool("cmscan-ssh", "cmscan scan, SSH (asyncssh)", "ssh", 5, 90.0),
        Tool("paramiko", "paramiko thread pool", "ssh", 4, 60.0, "bench.baselines.paramiko_pool"),
    )
}
COMPARISONS = (("cmscan-winrm", "pywinrm"), ("cmscan-ssh", "paramiko"), ("cmscan-winrm", "ansible"))


# -- the simulated fleet -------------------------------------------------------------------------


class Simulator:
    """`cmscan simulate` in its own process, pinned to its own core."""

    def __init__(
        self, options: FleetOptions, out: Path, *, ssh: bool, cpu: int | None, env: dict[str, str]
    ) -> None:
        self.options = options
        self.out = out
        self.ssh = ssh
        self.cpu = cpu
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.start_s = 0.0
        self.manifest: dict[str, Any] = {}

    def command(self) -> list[str]:
        o = self.options
        exec_ms = f"{o.exec_ms:g}" + (f"-{o.exec_ms_max:g}" if o.exec_ms_max is not None else "")
        mix = ",".join(f"{fault.value}={share:g}" for fault, share in o.fault_mix.items())
        command = [
            sys.executable, "-m", "scanner", "simulate", "--hosts", str(o.hosts),
            "--seed", str(o.seed), "--rtt-ms", f"{o.rtt_ms:g}", "--exec-ms", exec_ms,
            "--base-address", o.base_address, "--out", str(self.out),
            "--winrm-https-port", "off", "--ssh-port", "2222" if self.ssh else "off",
        ]  # fmt: skip
        return command + (["--fault-mix", mix] if mix else [])

    def start(self) -> None:
        log = self.out.parent / f"{self.out.name}.log"
        cpu = self.cpu
        started = time.perf_counter()
        with log.open("wb") as handle:
            self.process = subprocess.Popen(
                self.command(),
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
                preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None,
            )
        deadline = started + 120 + self.options.hosts * 0.05
        while b"Press Ctrl-C" not in log.read_bytes():
            if self.process.poll() is not None:
                raise RuntimeError(f"the simulator stopped:\n{log.read_text()[-3000:]}")
            if time.perf_counter() > deadline:
                self.stop()
                raise RuntimeError(f"the simulator did not start in time:\n{log.read_text()}")
            time.sleep(0.2)
        self.start_s = time.perf_counter() - started
        self.manifest = json.loads((self.out / "sim.json").read_text(encoding="utf-8"))

    def cpu_s(self) -> float:
        assert self.process is not None
        return sweep_proc.process_cpu_s(self.process.pid) or 0.0

    def stop(self) -> dict[str, Any]:
        """Stop the fleet; what it used over its whole life."""
        if self.process is None or self.process.returncode is not None:
            return {}
        peak = sweep_proc.process_rss_mib(self.process.pid, "VmHWM")
        self.process.send_signal(signal.SIGTERM)
        try:
            _, status, usage = os.wait4(self.process.pid, 0)
        except ChildProcessError:
            return {}
        self.process.returncode = os.waitstatus_to_exitcode(status)
        return {
            "hosts": self.options.hosts,
            "start_s": round(self.start_s, 1),
            "cpu_s_total": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mib": round(peak or usage.ru_maxrss / 1024, 1),
        }


def start_simulator(
    options: FleetOptions, work: Path, *, ssh: bool, cpu: int | None, env: dict[str, str]
) -> Simulator:
    """Start a fleet on a free-looking 127.N block; another block if that one is taken."""
    last: Exception | None = None
    for attempt in range(3):
        # 127.20-99: clear of `cmscan simulate`'s 127.10 and of the tests' 127.100-250.
        base = f"127.{random.randint(20, 99)}.0.0"
        placed = FleetOptions(**{**_fields(options), "base_address": base})
        simulator = Simulator(
            placed, work / f"fleet-{options.hosts}-{attempt}", ssh=ssh, cpu=cpu, env=env
        )
        try:
            simulator.start()
            return simulator
        except RuntimeError as exc:
            last = exc
    raise RuntimeError(f"could not start the simulated fleet: {last}")


def _fields(options: FleetOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in FleetOptions.__dataclass_fields__}


def latencies(options: FleetOptions) -> dict[str, sweep_model.HostLatency]:
    """Every host's latency parameters: the fleet is rebuilt here from the same options."""
    return {
        h.hostname: sweep_model.HostLatency(
            rtt_s=h.rtt_s,
            exec_s=h.exec_s,
            exec_range_s=h.exec_range_s,
            fault=h.fault.value if h.fault else None,
        )
        for h in build_fleet(options)
    }


# -- one measured run ------------------------------------------------------------------------------


@dataclass
class Bench:
    """Everything the runs of one invocation share."""

    work: Path
    pinning: sweep_proc.Pinning
    env: dict[str, str]
    concurrency: int
    patterns: tuple[str, ...]
    ansible: Path
    forks: int
    pywinrm_concurrency: int
    runs: list[sweep_report.Run]
    planned: int
    notes: list[str]
    per_site: int | None = None  # cmscan's schedule.per_site, when the run overrides it
    profile_rate: int = 0  # py-spy samples per second on every cmscan scan; 0: no profile
    profiles: list[str] = field(default_factory=list)

    def next_dir(self, tool: str, hosts: int) -> Path:
        path = self.work / f"run-{len(self.runs) + 1:02d}-{tool}-{hosts}"
        path.mkdir(parents=True)
        return path


def run_tool(
    bench: Bench,
    tool: Tool,
    simulator: Simulator,
    hostnames: Sequence[str],
    repeat: int,
    model: dict[str, sweep_model.HostLatency],
) -> sweep_report.Run:
    manifest = simulator.manifest
    by_name = {h["hostname"]: h for h in manifest["hosts"]}
    chosen = [by_name[n] for n in hostnames]
    concurrency = {"ansible": bench.forks, "pywinrm": bench.pywinrm_concurrency}.get(
        tool.name, bench.concurrency
    )
    where = bench.next_dir(tool.name, len(chosen))
    timeout_s = 300 + 0.5 * len(chosen)
    notes: dict[str, Any] = {}
    sim_before = simulator.cpu_s()
    if tool.module is None:
        measured, outcomes, verified = _run_cmscan(bench, tool, simulator, chosen, where, timeout_s)
        notes["stored_scans"] = cmscan_sweep.stored_scans(where / "cmscan.db")
        notes.update(cmscan_sweep.probe_times(where / "cmscan.db"))
    else:
        targets = _targets(manifest, chosen, tool.transport, bench.patterns)
        (where / "targets.json").write_text(json.dumps(targets.to_json()), encoding="utf-8")
        argv = [
            sys.executable, "-m", tool.module, "--targets", str(where / "targets.json"),
            "--out", str(where / "outputs.json"), "--concurrency", str(concurrency),
        ]  # fmt: skip
        env = {**bench.env, "CMSCAN_BENCH_ANSIBLE": str(bench.ansible)}
        measured = sweep_proc.run_measured(
            argv,
            cpu=bench.pinning.scanner,
            env=env,
            cwd=where,
            stdout=where / "stdout.txt",
            stderr=where / "stderr.txt",
            timeout_s=timeout_s,
        )
        if not (where / "outputs.json").exists():
            raise RuntimeError(
                f"{tool.name} wrote no results (exit {measured.exit_code}):"
                f" {(where / 'stderr.txt').read_text()[-2000:]}"
            )
        outputs = Outputs.read(where / "outputs.json")
        verified, problems = sweep_report.verified_facts(outputs.outputs, bench.patterns)
        outcomes = dict(sweep_report.failure_outcomes(outputs.failures))
        outcomes["ok"] = verified
        if len(outputs.outputs) > verified:
            outcomes["bad_output"] = len(outputs.outputs) - verified
        notes.update(outputs.notes)
        if problems:
            notes["bad_outputs"] = problems
        failures = sorted(set(outputs.failures.values()))
        notes["failure_examples"] = failures[:3]
        wrapper = float(outputs.notes.get("wrapper_cpu_s", 0.0))
        if wrapper:
            measured = _less_wrapper(measured, wrapper)
    simulator_cpu = simulator.cpu_s() - sim_before
    if measured.timed_out:
        notes["timed_out"] = f"stopped after {timeout_s:.0f} s"
    if tool.module is None and bench.profile_rate:
        notes["profiled"] = f"py-spy attached at {bench.profile_rate} Hz (non-blocking)"
    ideal = sweep_model.ideal(
        (model[n] for n in hostnames),
        exchanges=tool.exchanges,
        concurrency=concurrency,
        deadline_s=tool.deadline_s,
    )
    healthy = [
        sweep_model.mean_wait(model[n], exchanges=tool.exchanges, deadline_s=tool.deadline_s)
        for n in hostnames
        if model[n].fault is None
    ]
    busy = measured.core_busy
    run = sweep_report.Run(
        tool=tool.name,
        label=_label(bench, tool),
        transport=tool.transport,
        hosts=len(chosen),
        concurrency=concurrency,
        repeat=repeat,
        exit_code=measured.exit_code,
        wall_s=measured.wall_s,
        cpu_s=measured.cpu_s,
        max_rss_mib=measured.max_rss_mib,
        tree_peak_rss_mib=measured.tree_peak_rss_mib,
        processes=measured.tree_peak_processes,
        outcomes=outcomes,
        expected_ok=sum(h["expected_outcome"] == "ok" for h in chosen),
        facts_verified=verified,
        ideal_s=ideal.wall_s,
        ideal_exact=ideal.exact,
        exchanges=tool.exchanges,
        simulator_cpu_s=simulator_cpu,
        notes={**notes, "mean_wait_s": round(ideal.mean_wait_s, 3)},
        probe_s=notes.pop("probe_s_ok_mean", None),
        model_probe_s=sum(healthy) / len(healthy) if healthy else None,
        probe_s_sum=notes.pop("probe_s_sum", None),
        probing_s=notes.pop("span_s", None),
        scanner_core_busy=busy.get(bench.pinning.scanner) if bench.pinning.scanner else None,
        simulator_core_busy=(
            busy.get(bench.pinning.simulator) if bench.pinning.simulator is not None else None
        ),
    )
    bench.runs.append(run)
    _report(bench, run)
    return run


def _label(bench: Bench, tool: Tool) -> str:
    if tool.module is None and bench.per_site is not None:
        return f"{tool.label}, per-site {bench.per_site}"
    return tool.label


def _less_wrapper(measured: sweep_proc.Measured, wrapper_s: float) -> sweep_proc.Measured:
    fields = asdict(measured)
    fields["cpu_s"] = max(0.0, measured.cpu_s - wrapper_s)
    return sweep_proc.Measured(**fields)


def _run_cmscan(
    bench: Bench,
    tool: Tool,
    simulator: Simulator,
    chosen: list[dict[str, Any]],
    where: Path,
    timeout_s: float,
) -> tuple[sweep_proc.Measured, dict[str, int], int]:
    fleet_dir = simulator.out
    config = fleet_dir / "cmscan.toml"
    inventory = fleet_dir / "inventory.csv"
    if tool.transport == "ssh":
        inventory = cmscan_sweep.ssh_inventory(inventory, simulator.manifest, where / "ssh.csv")
    if len(chosen) < len(simulator.manifest["hosts"]):
        names = {h["hostname"] for h in chosen}
        inventory = cmscan_sweep.subset_inventory(inventory, names, where / "subset.csv")
    database = where / "cmscan.db"
    url = f"sqlite:///{database}"
    sweep_proc.run_quietly(
        cmscan_sweep.import_command(config, url, inventory, fleet_dir / "epraccur.csv"),
        env=bench.env,
        cwd=where,
    )
    env = dict(bench.env)
    if bench.per_site is not None:
        env["CMSCAN_SCHEDULE__PER_SITE"] = str(bench.per_site)
    profiler = (
        sweep_profile.Profiler(where, bench.profile_rate, bench.pinning.simulator)
        if bench.profile_rate
        else None
    )
    measured = sweep_proc.run_measured(
        cmscan_sweep.scan_command(config, url, bench.concurrency),
        cpu=bench.pinning.scanner,
        env=env,
        cwd=where,
        stdout=where / "stdout.txt",
        stderr=where / "stderr.txt",
        timeout_s=timeout_s,
        on_start=profiler.attach if profiler else None,
    )
    if profiler is not None:
        what = f"{tool.label}, {len(chosen):,} hosts, repeat {len(bench.runs) + 1}"
        bench.profiles.append(profiler.finish(what, measured.wall_s).text())
    stdout = (where / "stdout.txt").read_text(encoding="utf-8", errors="replace")
    if measured.exit_code not in (0, 1):
        raise RuntimeError(
            f"cmscan scan exited {measured.exit_code}: {(where / 'stderr.txt').read_text()[-2000:]}"
        )
    outcomes = cmscan_sweep.parse_outcomes(stdout)
    # The same check as the baselines': the stored facts parse and carry the patterns.
    verified, _ = sweep_report.verified_facts(cmscan_sweep.stored_facts(database), bench.patterns)
    return measured, outcomes, verified


def _targets(
    manifest: dict[str, Any],
    chosen: list[dict[str, Any]],
    transport: str,
    patterns: tuple[str, ...],
) -> Targets:
    port = "ssh_port" if transport == "ssh" else "winrm_port"
    return Targets(
        username=manifest["username"],
        password_file=Path(manifest["config"]).parent / "password",
        patterns=patterns,
        hosts=tuple(Host(h["hostname"], h["address"], int(h[port])) for h in chosen),
        known_hosts=Path(manifest["ssh_known_hosts"]) if manifest.get("ssh_known_hosts") else None,
        client_key=Path(manifest["ssh_client_key"]) if manifest.get("ssh_client_key") else None,
    )


def _report(bench: Bench, run: sweep_report.Run) -> None:
    print(
        f"[{len(bench.runs)}/{bench.planned}] {run.label}, {run.hosts:,} hosts at"
        f" {run.concurrency}: {run.wall_s:.1f} s, {run.hosts_per_s:.1f} hosts/s,"
        f" {run.cpu_ms_per_host:.1f} ms CPU/host, {run.max_rss_mib:.0f} MiB,"
        f" facts {run.facts_verified}/{run.expected_ok}, wall/ideal {run.wall_over_ideal:.2f},"
        f" scanner core {run.scanner_core_share:.0%}, simulator core"
        f" {run.simulator_core_share:.0%} -> {run.bound}",
        file=sys.stderr,
        flush=True,
    )
    if run.facts_verified < run.expected_ok:
        print(
            f"    warning: {run.expected_ok - run.facts_verified} hosts that should have answered"
            f" did not: {run.outcomes} {run.notes.get('failure_examples', '')}",
            file=sys.stderr,
            flush=True,
        )


# -- the modes ----------------------------------------------------------------------------------


def _fleet_options(args: argparse.Namespace, hosts: int) -> FleetOptions:
    low, high = parse_exec_ms(args.exec_ms)
    return FleetOptions(
        hosts=hosts,
        seed=args.seed,
        rtt_ms=args.rtt_ms,
        exec_ms=low,
        exec_ms_max=high,
        fault_mix=parse_fault_mix(args.fault_mix),
    )


def compare(args: argparse.Namespace, bench: Bench) -> list[dict[str, Any]]:
    """Every tool on the same fleet, interleaved repeat by repeat; Ansible on a subset."""
    options = _fleet_options(args, args.hosts)
    tools = [TOOLS[name] for name in args.tools]
    ssh = any(t.transport == "ssh" for t in tools)
    ansible = TOOLS["ansible"] in tools
    per_repeat = len([t for t in tools if t.name != "ansible"])
    bench.planned = per_repeat * args.repeats + (2 * args.ansible_repeats if ansible else 0)
    model = latencies(options)
    simulator = start_simulator(
        options, bench.work, ssh=ssh, cpu=bench.pinning.simulator, env=bench.env
    )
    try:
        everyone = [h["hostname"] for h in simulator.manifest["hosts"]]
        subset = everyone[: args.ansible_hosts]
        if TOOLS["pywinrm"] in tools:
            bench.notes.append(_run_ps_check(bench, simulator))
        for repeat in range(1, args.repeats + 1):
            for tool in tools:
                if tool.name != "ansible":
                    run_tool(bench, tool, simulator, everyone, repeat, model)
            if ansible and repeat <= args.ansible_repeats:
                run_tool(bench, TOOLS["cmscan-winrm"], simulator, subset, repeat, model)
                run_tool(bench, TOOLS["ansible"], simulator, subset, repeat, model)
    finally:
        used = simulator.stop()
    return [used]


def series(args: argparse.Namespace, bench: Bench) -> list[dict[str, Any]]:
    """The chosen tools at each fleet size, each size on a fleet of its own."""
    tools = [TOOLS[name] for name in args.tools]
    bench.planned = len(tools) * len(args.sizes) * args.repeats
    used = []
    for hosts in args.sizes:
        options = _fleet_options(args, hosts)
        model = latencies(options)
        ssh = any(t.transport == "ssh" for t in tools)
        simulator = start_simulator(
            options, bench.work, ssh=ssh, cpu=bench.pinning.simulator, env=bench.env
        )
        try:
            names = [h["hostname"] for h in simulator.manifest["hosts"]]
            for repeat in range(1, args.repeats + 1):
                for tool in tools:
                    run_tool(bench, tool, simulator, names, repeat, model)
        finally:
            used.append(simulator.stop())
    return used


def _run_ps_check(bench: Bench, simulator: Simulator) -> str:
    """Record what pywinrm's obvious `Session.run_ps(probe)` does with cmscan's probe."""
    host = next(h for h in simulator.manifest["hosts"] if h["expected_outcome"] == "ok")
    where = bench.work / "run-ps-check"
    where.mkdir()
    targets = _targets(simulator.manifest, [host], "winrm", bench.patterns)
    (where / "targets.json").write_text(json.dumps(targets.to_json()), encoding="utf-8")
    sweep_proc.run_quietly(
        [
            sys.executable,
            "-m",
            "bench.baselines.pywinrm_pool",
            "--targets",
            str(where / "targets.json"),
            "--out",
            str(where / "out.json"),
            "--run-ps-check",
        ],
        env=bench.env,
        cwd=where,
    )
    check = Outputs.read(where / "out.json").notes["run_ps"]
    return (
        f"pywinrm Session.run_ps(probe) on {check['host']}: exit {check.get('status_code')},"
        f" stderr {check.get('stderr', check.get('error'))!r}; got facts: {check.get('got_facts')}."
        " The pywinrm baseline therefore sends the probe on stdin instead (see"
        " bench/baselines/pywinrm_pool.py)."
    )


def _targets_met(runs: list[sweep_report.Run]) -> list[dict[str, str]]:
    mine = [r for r in runs if r.tool == "cmscan-winrm"]
    if not mine:
        return []
    worst_wall = max(r.wall_s for r in mine)
    worst_rss = max(r.max_rss_mib for r in mine)
    return [
        {
            "what": "wall time, 5,000 hosts (worst run)",
            "measured": f"{worst_wall:.1f} s",
            "target": f"under {PRESET_TARGET_WALL_S:.0f} s",
            "verdict": "met" if worst_wall < PRESET_TARGET_WALL_S else "missed",
        },
        {
            "what": "scanner peak RSS (worst run)",
            "measured": f"{worst_rss:.0f} MiB",
            "target": f"under {PRESET_TARGET_RSS_MIB:.0f} MiB",
            "verdict": "met" if worst_rss < PRESET_TARGET_RSS_MIB else "missed",
        },
    ]


# -- command line ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=("compare", "series", "preset"))
    parser.add_argument("--hosts", type=int, default=None, help="compare: fleet size (1000)")
    parser.add_argument(
        "--sizes", default="100,1000,5000,10000", help="series: fleet sizes, comma separated"
    )
    parser.add_argument("--tools", default=None, help=f"comma separated, of {', '.join(TOOLS)}")
    parser.add_argument("--repeats", type=int, default=None, help="runs of each tool")
    parser.add_argument("--concurrency", type=int, default=256, help="cmscan's and the pools'")
    parser.add_argument(
        "--pywinrm-concurrency", type=int, default=None, help="pywinrm's threads (--concurrency)"
    )
    parser.add_argument("--forks", type=int, default=50, help="Ansible's forks")
    parser.add_argument("--ansible-hosts", type=int, default=500, help="Ansible's subset")
    parser.add_argument("--ansible-repeats", type=int, default=2, help="runs of Ansible")
    parser.add_argument("--rtt-ms", type=float, default=40.0, help="simulated round trip")
    parser.add_argument("--exec-ms", default="500-1500", help="probe run time, or LO-HI")
    parser.add_argument("--fault-mix", default="powered-off=0.1", help="FAULT=SHARE,...")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--per-site",
        type=int,
        default=None,
        help="cmscan's probes at once per practice (default: its own, schedule.per_site = 8)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="HZ",
        help="attach py-spy to every cmscan scan at HZ samples/s and write where the GIL went",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where results go")
    parser.add_argument("--name", default=None, help="results file name (sweep-<mode>)")
    args = parser.parse_args(argv)
    defaults = {
        "compare": ("cmscan-winrm,pywinrm,cmscan-ssh,paramiko,ansible", 1000, 3),
        "series": ("cmscan-winrm", 0, 2),
        "preset": ("cmscan-winrm", 5000, 2),
    }[args.mode]
    args.tools = [t.strip() for t in (args.tools or defaults[0]).split(",") if t.strip()]
    unknown = [t for t in args.tools if t not in TOOLS]
    if unknown:
        parser.error(f"unknown tool {', '.join(unknown)}; use {', '.join(TOOLS)}")
    args.hosts = args.hosts or defaults[1]
    args.repeats = args.repeats or defaults[2]
    args.sizes = [int(s) for s in args.sizes.split(",")] if args.mode == "series" else []
    if args.mode == "preset":
        args.sizes = [args.hosts]
    args.pywinrm_concurrency = args.pywinrm_concurrency or args.concurrency
    args.name = args.name or f"sweep-{args.mode}"
    try:
        _fleet_options(args, 1)
    except ValueError as exc:
        parser.error(str(exc))
    if "ansible" in args.tools and not ANSIBLE.exists():
        parser.error(f"Ansible is not installed at {ANSIBLE}: run `make bench` once")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    pinning = sweep_proc.Pinning.choose(not args.no_pin)
    if pinning.scanner is not None:
        os.sched_setaffinity(0, {pinning.scanner})  # this harness mostly sleeps: keep it off
    print(f"cmscan sweep benchmark ({args.mode}): {pinning.describe()}", file=sys.stderr)
    started = datetime.datetime.now(datetime.UTC)
    work = Path(tempfile.mkdtemp(prefix=f"cmscan-sweep-{args.mode}-"))
    bench = Bench(
        work=work,
        pinning=pinning,
        env=sweep_proc.python_env(ROOT),
        concurrency=args.concurrency,
        patterns=tuple(default_policy().watched_patterns),
        ansible=ANSIBLE,
        forks=args.forks,
        pywinrm_concurrency=args.pywinrm_concurrency,
        runs=[],
        planned=0,
        notes=[],
        per_site=args.per_site,
        profile_rate=args.profile,
    )
    machine = sweep_proc.machine()
    # The code each run measured is the tree as it stands when the run starts: note it now,
    # and again at the end in case the tree changed during the benchmark.
    versions = sweep_proc.versions(ANSIBLE.parent / "python", ROOT)
    try:
        simulators = compare(args, bench) if args.mode == "compare" else series(args, bench)
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory kept: {work}", file=sys.stderr)
    options = _fleet_options(args, args.hosts or 1)
    document: dict[str, Any] = {
        "title": {
            "compare": f"cmscan against the alternatives, {args.hosts:,} simulated hosts",
            "series": "cmscan sweep by fleet size",
            "preset": f"Daemon benchmark preset: {args.hosts:,} hosts, cmscan scan"
            f" --concurrency {args.concurrency}",
        }[args.mode],
        "mode": args.mode,
        "command": " ".join(["bench/sweep.py", *(argv if argv is not None else sys.argv[1:])]),
        "started": started.isoformat(timespec="seconds"),
        "machine": machine,
        "versions": versions,
        "pinning": pinning.describe(),
        "seed": args.seed,
        "latency_model": sweep_model.describe(options.rtt_ms, options.exec_ms, options.exec_ms_max),
        "fault_mix": {f.value: s for f, s in options.fault_mix.items()},
        "fault_mix_text": ", ".join(f"{f.value} {s:.0%}" for f, s in options.fault_mix.items())
        or "no faults",
        "patterns": list(bench.patterns),
        "simulators": simulators,
        "runs": [r.to_json() for r in bench.runs],
        "ratios": [asdict(r) for r in sweep_report.ratios(bench.runs, COMPARISONS)],
        "targets": _targets_met(bench.runs) if args.mode == "preset" else [],
        "notes": bench.notes,
        "profiles": bench.profiles,
    }
    at_end = sweep_proc.source_revision(ROOT)
    if at_end != versions.get("cmscan_commit"):
        bench.notes.append(f"the source tree changed during the benchmark: {at_end} at the end")
    write(document, args.results, args.name)


def write(document: dict[str, Any], results: Path, name: str) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    table = sweep_report.markdown(document)
    (results / f"{name}.md").write_text(table, encoding="utf-8")
    print(table)
    if document.get("profiles"):
        profiles = "\n\n".join(document["profiles"]) + "\n"
        (results / f"{name}-profile.txt").write_text(profiles, encoding="utf-8")
        print(profiles)
    try:
        from bench import plot
    except ImportError as exc:  # matplotlib is in the bench extra
        print(f"no plot: {exc} (pip install -e '.[bench]')", file=sys.stderr)
        return
    with contextlib.suppress(ValueError):
        print(f"plot: {plot.plot(document, results / f'{name}.png')}", file=sys.stderr)


if __name__ == "__main__":
    main()
