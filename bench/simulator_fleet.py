"""Benchmark the simulated fleet: start-up time and memory for N hosts, and requests served per
second under a real client load (pypsrp over WinRM, asyncssh over SSH) from another process.

    .venv/bin/python bench/simulator_fleet.py --hosts 5000 --seconds 20

Targets: 5,000 hosts (WinRM HTTP + HTTPS + SSH listeners each) start in under 20 s and use
under 1.5 GiB RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncssh
import requests.adapters
from pypsrp.client import Client

from collectors.probe import SSH_COMMAND, probe_script, stdin_invocation
from simulator.fleet import FleetOptions
from simulator.fleet_thread import FleetThread
from simulator.profiles import WATCHED_PATTERNS
from simulator.run_options import RunOptions


def rss_mib() -> float:
    """Current resident set size of this process, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the client process -------------------------------------------------------------------------


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.http_requests = 0
        self.probes = 0
        self.failures = 0


def _count_http(counter: _Counter) -> None:
    send = requests.adapters.HTTPAdapter.send

    def counted(self: requests.adapters.HTTPAdapter, *args: Any, **kwargs: Any) -> Any:
        with counter.lock:
            counter.http_requests += 1
        return send(self, *args, **kwargs)

    requests.adapters.HTTPAdapter.send = counted  # type: ignore[method-assign]


def winrm_load(
    manifest: dict[str, Any], seconds: float, workers: int, https: bool
) -> dict[str, Any]:
    """Probe random hosts with pypsrp (runspace pool open, probe, close) from `workers` threads."""
    counter = _Counter()
    _count_http(counter)
    hosts = [h for h in manifest["hosts"] if h["fault"] is None]
    script = probe_script()
    end = time.monotonic() + seconds

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < end:
            host = rng.choice(hosts)
            try:
                client = Client(
                    host["address"],
                    port=host["winrm_https_port" if https else "winrm_port"],
                    ssl=https,
                    username=manifest["username"],
                    password=manifest["password"],
                    auth="ntlm",
                    cert_validation=manifest["ca_file"] if https else False,
                    encryption="auto" if https else "always",
                    reconnection_retries=0,
                )
                output, _, had_errors = client.execute_ps(script)
                ok = not had_errors and output.startswith("{")
            except Exception:  # a benchmark counts failures; it does not stop for them
                ok = False
            with counter.lock:
                counter.probes += ok
                counter.failures += not ok

    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(worker, range(workers)))
    elapsed = time.monotonic() - started
    return {
        "transport": "winrm-https" if https else "winrm",
        "seconds": round(elapsed, 2),
        "probes": counter.probes,
        "failures": counter.failures,
        "probes_per_s": round(counter.probes / elapsed, 1),
        "http_requests_per_s": round(counter.http_requests / elapsed, 1),
    }


async def ssh_load(manifest: dict[str, Any], seconds: float, workers: int) -> dict[str, Any]:
    """Probe random hosts over SSH (connect, key auth, probe on stdin) from `workers` tasks."""
    hosts = [h for h in manifest["hosts"] if h["fault"] is None]
    known_hosts = asyncssh.read_known_hosts(manifest["ssh_known_hosts"])
    key = asyncssh.read_private_key(manifest["ssh_client_key"])
    stdin = stdin_invocation(probe_script(), WATCHED_PATTERNS)
    counts = {"probes": 0, "failures": 0}
    end = time.monotonic() + seconds

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < end:
            host = rng.choice(hosts)
            try:
                async with asyncssh.connect(
                    host["address"],
                    host["ssh_port"],
                    username=manifest["username"],
                    client_keys=[key],
                    known_hosts=known_hosts,
                    agent_path=None,
                ) as conn:
                    result = await conn.run(SSH_COMMAND, input=stdin, check=True, timeout=30)
                counts["probes" if str(result.stdout).startswith("{") else "failures"] += 1
            except (OSError, asyncssh.Error, TimeoutError):
                counts["failures"] += 1

    started = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(workers)))
    elapsed = time.monotonic() - started
    return {
        "transport": "ssh",
        "seconds": round(elapsed, 2),
        **counts,
        "probes_per_s": round(counts["probes"] / elapsed, 1),
    }


def client_main(args: argparse.Namespace) -> None:
    manifest = json.loads(Path(args.manifest).read_text())
    if args.transport == "ssh":
        report = asyncio.run(ssh_load(manifest, args.seconds, args.workers))
    else:
        report = winrm_load(manifest, args.seconds, args.workers, args.transport == "winrm-https")
    print(json.dumps(report))


# -- the fleet process --------------------------------------------------------------------------


def fleet_main(args: argparse.Namespace) -> None:
    if args.out:
        fleet_run(args, Path(args.out))
        return
    # The fleet's files (5,000 host keys, its password) go away with the run.
    with tempfile.TemporaryDirectory(prefix="cmscan-bench-") as scratch:
        fleet_run(args, Path(scratch))


def fleet_run(args: argparse.Namespace, out: Path) -> None:
    options = RunOptions(
        fleet=FleetOptions(
            hosts=args.hosts, seed=args.seed, rtt_ms=0, exec_ms=0, base_address=args.base_address
        ),
        out_dir=out,
        winrm_port=args.winrm_port,
        winrm_https_port=args.winrm_https_port,
        ssh_port=args.ssh_port,
    )
    before = rss_mib()
    started = time.monotonic()
    with FleetThread(options) as fleet:
        startup = time.monotonic() - started
        idle_rss = rss_mib()
        report: dict[str, Any] = {
            "hosts": args.hosts,
            "listeners": args.hosts * 3,
            "startup_s": round(startup, 2),
            "rss_before_mib": round(before),
            "rss_idle_mib": round(idle_rss),
            "load": [],
        }
        print(json.dumps(report), flush=True)
        for transport in args.load:
            command = [
                sys.executable, __file__, "--client", "--transport", transport,
                "--manifest", str(fleet.running.files.manifest),
                "--seconds", str(args.seconds), "--workers", str(args.workers),
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["fleet_rss_mib"] = round(rss_mib())
            report["load"].append(result)
            print(json.dumps(result), flush=True)
        stopping = time.monotonic()
    report["shutdown_s"] = round(time.monotonic() - stopping, 2)
    report["rss_peak_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(report, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hosts", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20.0, help="load per transport")
    parser.add_argument("--workers", type=int, default=16, help="client threads / tasks")
    parser.add_argument(
        "--load", nargs="*", default=["winrm", "winrm-https", "ssh"], help="transports to load"
    )
    parser.add_argument("--base-address", default="127.40.0.0")
    parser.add_argument("--winrm-port", type=int, default=5985)
    parser.add_argument("--winrm-https-port", type=int, default=5986)
    parser.add_argument("--ssh-port", type=int, default=2222)
    parser.add_argument("--out", help="fleet directory (default: a new temporary one)")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--transport", help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
    else:
        fleet_main(args)


if __name__ == "__main__":
    main()
