"""Benchmark the scanner's CPU cost per WinRM probe (HTTP+NTLM+encryption, and HTTPS), by path.

    .venv/bin/python bench/probe_cpu.py                      # 200 probes each, 16 at a time
    .venv/bin/python bench/probe_cpu.py --probes 400 --concurrency 32
    .venv/bin/python bench/probe_cpu.py --profile 30         # where the CPU goes, per mode

The simulated hosts run in a separate process, so the figure is the user+sys CPU time of
the scanning process alone (all its threads), divided by the probes it completed. Results
are printed and written to bench/results/probe_cpu.json.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import platform
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = Path(__file__).parent / "results" / "probe_cpu.json"
USERNAME = "CMSCAN\\svc-probe-bench"
PASSWORD = "Probe-Bench-Passw0rd!"
PATTERNS = ("NHS *", "*Oberthur*", "*IDEMIA*", "*Authentic*Web*Pack*")
TARGET_MS = 25.0


# The golden probe output of a compliant Windows 10 workstation (about 1.5 KiB).
DOCUMENT = ROOT / "tests" / "collectors" / "fixtures" / "compliant-win10.json"


def facts_document(patterns: list[str]) -> str:
    """What a real probe answers, with the patterns it was given."""
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    document["probe"]["patterns"] = patterns
    return json.dumps(document, separators=(",", ":"))


# --- the simulated hosts (a separate process) -----------------------------------------


@dataclass
class BenchHost:
    """A healthy host with no simulated latency: the scanner's own cost is what is measured."""

    hostname: str

    @property
    def fault(self) -> None:
        return None

    def timing(self) -> Any:
        from simulator.behaviour import Timing

        return Timing(0.0, 0.0, 0.0)

    def run_script(self, script: str, parameters: Mapping[str, object]) -> Any:
        from collectors.probe import is_probe
        from simulator.behaviour import PowerShellError, ScriptResult

        if not is_probe(script):
            return ScriptResult(error=PowerShellError("not the cmscan probe"))
        raw = parameters.get("Patterns") or []
        patterns = [str(p) for p in raw] if isinstance(raw, list | tuple) else [str(raw)]
        return ScriptResult(facts_document(patterns))


async def serve(hosts: int) -> None:
    """Start the hosts, print where they listen, and run until stdin closes."""
    from simulator.tls import FleetCA
    from simulator.winrm import Account, start_winrm

    block = random.randint(32, 250)
    ca = FleetCA.create(Path(tempfile.mkdtemp(prefix="cmscan-probe-bench-")))
    account = Account(USERNAME, PASSWORD)
    endpoints = []
    for index in range(hosts):
        host = BenchHost(f"pc-{index:03d}.bench.example.nhs.uk")
        endpoints.append(
            await start_winrm(
                host,
                address=f"127.{block}.0.{index + 1}",
                account=account,
                http_port=0,
                https_port=0,
                ca=ca,
            )
        )
    listing = {
        "ca_file": str(ca.ca_file),
        "hosts": [
            {
                "hostname": e.host.hostname,
                "address": e.address,
                "http_port": e.http_port,
                "https_port": e.https_port,
            }
            for e in endpoints
        ],
    }
    sys.stdout.write(json.dumps(listing) + "\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    shells = sum(e.open_shells for e in endpoints)
    for endpoint in endpoints:
        await endpoint.close()
    sys.stdout.write(json.dumps({"open_shells": shells}) + "\n")


# --- the scanner (this process) ---------------------------------------------------------


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def targets(listing: dict[str, Any], https: bool) -> list[Any]:
    from collectors.base import Target

    return [
        Target(
            hostname=h["hostname"],
            port=h["https_port"] if https else h["http_port"],
            transport="winrm-https" if https else "winrm",
            address=h["address"],
            patterns=PATTERNS,
        )
        for h in listing["hosts"]
    ]


def credentials() -> Any:
    from collectors.credentials import Credentials, Secret

    return Credentials(profile="bench", username=USERNAME, auth="ntlm", password=Secret(PASSWORD))


PATHS = ("event-loop", "pypsrp")


def collector_for(path: str, config: Any) -> Any:
    """The event-loop collector cmscan uses, or pypsrp in threads (CredSSP and certificates)."""
    from collectors.winrm import WinRMCollector
    from collectors.winrm_pypsrp import PypsrpWinRM

    return WinRMCollector(config) if path == "event-loop" else PypsrpWinRM(config)


async def measure(
    listing: dict[str, Any], https: bool, probes: int, concurrency: int, path: str
) -> dict[str, Any]:
    from collectors.base import Outcome, Timeouts
    from collectors.winrm import WinRMConfig

    config = WinRMConfig(https=https, ca_file=Path(listing["ca_file"]), max_threads=concurrency)
    collector = collector_for(path, config)
    slots = asyncio.Semaphore(concurrency)

    async def one(target: Any) -> Any:
        async with slots:
            return await collector.collect(target, creds, timeouts)

    hosts = targets(listing, https)
    creds = credentials()
    timeouts = Timeouts(connect=10, operation=30, total=60)
    # Warm up: imports, first TLS contexts, first NTLM handshakes.
    for target in hosts[:4]:
        await collector.collect(target, creds, timeouts)
    cpu_before, wall_before = cpu_seconds(), time.perf_counter()
    results = await asyncio.gather(*(one(hosts[i % len(hosts)]) for i in range(probes)))
    wall = time.perf_counter() - wall_before
    cpu = cpu_seconds() - cpu_before
    await collector.aclose()
    ok = sum(1 for r in results if r.outcome is Outcome.OK)
    failures = sorted({f"{r.outcome}: {r.reason}" for r in results if r.outcome is not Outcome.OK})
    return {
        "mode": "https" if https else "http+ntlm+encryption",
        "path": path,
        "probes": probes,
        "concurrency": concurrency,
        "ok": ok,
        "failures": failures[:3],
        "wall_s": round(wall, 2),
        "probes_per_s": round(probes / wall, 1),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_probe": round(cpu * 1000 / max(ok, 1), 2),
        "cpu_share_of_wall": round(cpu / wall, 2),
        "target_ms": TARGET_MS,
    }


def profile(listing: dict[str, Any], https: bool, probes: int) -> str:
    """Where the event-loop collector's CPU goes over `probes` sequential probes."""
    from collectors.base import Timeouts
    from collectors.winrm import WinRMCollector, WinRMConfig

    config = WinRMConfig(https=https, ca_file=Path(listing["ca_file"]))
    hosts = targets(listing, https)
    creds = credentials()
    timeouts = Timeouts(connect=10, operation=30, total=60)
    profiler = cProfile.Profile(time.thread_time)  # CPU of this thread, not waiting time

    async def sweep() -> None:
        collector = WinRMCollector(config)
        await collector.collect(hosts[0], creds, timeouts)  # warm up
        profiler.enable()
        for i in range(probes):
            await collector.collect(hosts[i % len(hosts)], creds, timeouts)
        profiler.disable()

    asyncio.run(sweep())
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(18)
    stats.sort_stats("cumulative").print_stats(30)
    return text.getvalue()


def start_hosts(hosts: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    server = subprocess.Popen(
        [sys.executable, __file__, "serve", "--hosts", str(hosts)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line:
        server.kill()
        raise SystemExit("the simulated hosts did not start")
    return server, json.loads(line)


def stop_hosts(server: subprocess.Popen[str]) -> dict[str, Any]:
    assert server.stdin is not None
    assert server.stdout is not None
    server.stdin.close()
    line = server.stdout.readline()
    server.wait(timeout=30)
    return json.loads(line) if line else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="run", choices=["run", "serve"])
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="profile N sequential probes instead"
    )
    args = parser.parse_args()
    if args.command == "serve":
        asyncio.run(serve(args.hosts))
        return

    server, listing = start_hosts(args.hosts)
    try:
        if args.profile:
            for https in (False, True):
                print(f"=== {'https' if https else 'http+ntlm+encryption'}: {args.profile} probes")
                print(profile(listing, https, args.profile))
            return
        # The two paths alternate, so both meet the same state of this shared machine.
        runs = [
            asyncio.run(measure(listing, https, args.probes, args.concurrency, path))
            for https in (False, True)
            for path in PATHS
        ]
    finally:
        left = stop_hosts(server)
    result = {
        "bench": "probe_cpu",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "hosts": args.hosts,
        "runs": runs,
        "shells_left_open": left.get("open_shells"),
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
