"""Replicas on one PostgreSQL: 1, 2 and 4 daemons sweeping one simulated fleet, side by side.

    .venv/bin/python bench/replicas.py                  # 5,000 hosts, 1, 2 and 4 daemons
    .venv/bin/python bench/replicas.py --hosts 10000 --daemons 1,2 --postgres URL

For each run the fleet's inventory is imported into a fresh PostgreSQL database (not timed),
N daemons start together and sweep every host once; the run ends when every host has a
result. It reports the sweep time (first daemon started to last result), the hosts probed
more than once (must be 0: every host is due once and is not due again for at least 30
minutes), host claims per second (the claim generations the sweep used, over its time), and
the daemons' CPU per host. For N of 2 and more a second run SIGKILLs one daemon once 40 % of
the fleet is scanned and measures how long its claimed hosts took to be claimed by the others.

The simulator is pinned to one core and every daemon to the other, as in bench/sweep.py, so
more daemons share one core: the figures show what coordinating costs, not how replicas on
separate machines scale. Results go to bench/results/replicas.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench import sweep_proc  # noqa: E402
from bench.sweep import start_simulator  # noqa: E402
from simulator.fleet import FleetOptions  # noqa: E402

RESULTS = ROOT / "bench" / "results"
KILL_AT = 0.4  # share of the fleet scanned when one replica is killed
POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class Run:
    """One sweep by `daemons` replicas, with or without one of them killed."""

    daemons: int
    killed: bool
    hosts: int
    sweep_s: float
    scanned: int
    probed_twice: int
    host_claims: int
    claims_per_s: float
    cpu_ms_per_host: float
    held_by_killed: int | None = None
    taken_over_s: float | None = None


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server, dropped afterwards; yields cmscan's URL for it."""
    name = f"cmscan_replicas_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    host, port, user = info.get("host", "127.0.0.1"), info.get("port", "5432"), info["user"]
    try:
        yield f"postgresql+psycopg://{user}@{host}:{port}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _one(url: str, query: str, *params: object) -> Any:
    with psycopg.connect(_plain(url)) as connection:
        row = connection.execute(query, params).fetchone()
    return row[0] if row else None


def _daemon(
    config: Path, url: str, log: Path, concurrency: int, cpu: int | None, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "scanner", "daemon", "--config", str(config), "--db", url,
        "--listen", "127.0.0.1:0", "--concurrency", str(concurrency),
    ]  # fmt: skip
    with log.open("wb") as handle:
        return subprocess.Popen(
            command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None,
        )


def _instance_of(url: str, pid: int, deadline: float) -> str:
    while time.monotonic() < deadline:
        found = _one(url, "SELECT id FROM scanner_instance WHERE pid = %s", pid)
        if found:
            return str(found)
        time.sleep(POLL_S)
    raise RuntimeError(f"daemon {pid} never registered")


def sweep(
    *,
    hosts: int,
    daemons: int,
    kill: bool,
    fleet_dir: Path,
    admin_url: str,
    work: Path,
    concurrency: int,
    cpu: int | None,
    env: dict[str, str],
    timeout_s: float,
) -> Run:
    config = fleet_dir / "cmscan.toml"
    with fresh_database(admin_url) as url:
        sweep_proc.run_quietly(
            [
                sys.executable,
                "-m",
                "scanner",
                "inventory",
                "import",
                str(fleet_dir / "inventory.csv"),
                "--ods",
                str(fleet_dir / "epraccur.csv"),
                "--config",
                str(config),
                "--db",
                url,
            ],
            env=env,
            cwd=work,
        )
        tag = f"{daemons}{'-kill' if kill else ''}"
        started = time.monotonic()
        processes = [
            _daemon(config, url, work / f"daemon-{tag}-{i}.log", concurrency, cpu, env)
            for i in range(daemons)
        ]
        cpu_s: dict[int, float] = {}
        held: int | None = None
        taken_over_s: float | None = None
        try:
            victim = processes[-1] if kill else None
            victim_id = _instance_of(url, victim.pid, started + 60) if victim else None
            killed_at: float | None = None
            while True:
                for process in processes:
                    if process is not victim or killed_at is None:
                        cpu_s[process.pid] = sweep_proc.process_cpu_s(process.pid) or 0.0
                    if process.poll() is not None and process is not victim:
                        raise RuntimeError(f"a daemon exited early: see {work}")
                scanned = int(_one(url, "SELECT count(DISTINCT host_id) FROM scan") or 0)
                now = time.monotonic()
                if victim is not None and killed_at is None and scanned >= KILL_AT * hosts:
                    os.kill(victim.pid, signal.SIGKILL)
                    victim.wait()
                    killed_at = time.monotonic()
                    held = int(
                        _one(
                            url, "SELECT count(*) FROM host_state WHERE lease_owner = %s", victim_id
                        )
                        or 0
                    )
                if killed_at is not None and taken_over_s is None:
                    left = _one(
                        url, "SELECT count(*) FROM host_state WHERE lease_owner = %s", victim_id
                    )
                    if not left:
                        taken_over_s = now - killed_at
                if scanned >= hosts:
                    break
                if now - started > timeout_s:
                    raise RuntimeError(f"{scanned} of {hosts} scanned after {timeout_s:.0f} s")
                time.sleep(POLL_S)
            sweep_s = time.monotonic() - started
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=60)
        probed_twice = int(
            _one(
                url,
                "SELECT count(*) FROM (SELECT host_id FROM scan GROUP BY host_id"
                " HAVING count(*) > 1) AS twice",
            )
            or 0
        )
        claims = int(_one(url, "SELECT coalesce(sum(claim_generation), 0) FROM host_state") or 0)
    return Run(
        daemons=daemons,
        killed=kill,
        hosts=hosts,
        sweep_s=round(sweep_s, 1),
        scanned=scanned,
        probed_twice=probed_twice,
        host_claims=claims,
        claims_per_s=round(claims / sweep_s, 1),
        cpu_ms_per_host=round(1000 * sum(cpu_s.values()) / hosts, 2),
        held_by_killed=held,
        taken_over_s=round(taken_over_s, 1) if taken_over_s is not None else None,
    )


def _machine(machine: dict[str, Any]) -> str:
    load = ", ".join(str(x) for x in machine.get("load_average_at_start", []))
    return (
        f"{machine.get('cpu_model')}, {machine.get('cores')} cores, {machine.get('ram_gib')} GiB"
        f" RAM, {machine.get('kernel')} (load average at start {load})"
    )


def markdown(document: dict[str, Any]) -> str:
    lines = [
        f"# {document['title']}",
        "",
        f"Measured {document['measured_at']} on {_machine(document['machine'])}.",
        f"cmscan commit {document['versions'].get('cmscan_commit')}; {document['pinning']}.",
        f"Fleet: {document['hosts']:,} simulated WinRM hosts, {document['latency']};"
        f" each daemon at concurrency {document['concurrency']}.",
        "",
        "| daemons | one killed at 40 % | sweep s | hosts probed twice | host claims"
        " | claims/s | daemons' CPU ms/host | hosts the killed one held | taken over in s |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for run in document["runs"]:
        held = run["held_by_killed"]
        taken = run["taken_over_s"]
        lines.append(
            f"| {run['daemons']} | {'yes' if run['killed'] else 'no'} | {run['sweep_s']}"
            f" | {run['probed_twice']} | {run['host_claims']:,} | {run['claims_per_s']}"
            f" | {run['cpu_ms_per_host']} | {'–' if held is None else held}"
            f" | {'–' if taken is None else taken} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hosts", type=int, default=5000, help="fleet size (5000)")
    parser.add_argument("--daemons", default="1,2,4", help="replica counts, comma separated")
    parser.add_argument("--concurrency", type=int, default=256, help="each daemon's")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "CMSCAN_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a server where this may create and drop databases (CMSCAN_BENCH_POSTGRES)",
    )
    parser.add_argument("--no-kill", action="store_true", help="skip the runs with a kill -9")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--name", default="replicas")
    args = parser.parse_args(argv)
    try:
        counts = [int(part) for part in args.daemons.split(",") if part.strip()]
    except ValueError:
        parser.error(f"--daemons takes numbers separated by commas, not {args.daemons!r}")
    if not counts or min(counts) < 1:
        parser.error("--daemons needs at least one count of 1 or more")
    try:
        with psycopg.connect(args.postgres, connect_timeout=5):
            pass
    except psycopg.Error as exc:
        parser.error(f"cannot reach PostgreSQL at {args.postgres}: {exc}".strip())
    pinning = sweep_proc.Pinning.choose()
    env = sweep_proc.python_env(ROOT)
    options = FleetOptions(
        hosts=args.hosts,
        seed=1,
        rtt_ms=40.0,
        exec_ms=500.0,
        exec_ms_max=1500.0,
        fault_mix={},
    )
    measured_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    versions = sweep_proc.versions(None, ROOT)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="cmscan-replicas-") as scratch:
        work = Path(scratch)
        simulator = start_simulator(options, work, ssh=False, cpu=pinning.simulator, env=env)
        try:
            plan = [(n, False) for n in counts]
            if not args.no_kill:
                plan += [(n, True) for n in counts if n >= 2]
            for daemons, kill in plan:
                print(f"{daemons} daemon(s){', one killed' if kill else ''} ...", file=sys.stderr)
                run = sweep(
                    hosts=args.hosts,
                    daemons=daemons,
                    kill=kill,
                    fleet_dir=simulator.out,
                    admin_url=args.postgres,
                    work=work,
                    concurrency=args.concurrency,
                    cpu=pinning.scanner,
                    env=env,
                    timeout_s=600.0,
                )
                print(f"  {asdict(run)}", file=sys.stderr)
                runs.append(run)
        finally:
            simulator.stop()
    document = {
        "title": f"Replicas on one PostgreSQL, {args.hosts:,} simulated hosts",
        "measured_at": measured_at,
        "machine": sweep_proc.machine(),
        "versions": versions,
        "pinning": pinning.describe(),
        "hosts": args.hosts,
        "concurrency": args.concurrency,
        "latency": "round trip 40 ms x U(0.5, 2.0), probe run time U(500, 1500) ms, no faults",
        "runs": [asdict(run) for run in runs],
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{args.name}.json").write_text(
        json.dumps(document, indent=1) + "\n", encoding="utf-8"
    )
    table = markdown(document)
    (args.results / f"{args.name}.md").write_text(table, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
