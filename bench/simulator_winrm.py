"""Benchmark the simulator's WinRM endpoint: idle cost, and requests served to pypsrp clients.

    .venv/bin/python bench/simulator_winrm.py idle --hosts 1000
    .venv/bin/python bench/simulator_winrm.py load --hosts 50 --clients 32 --seconds 15

Clients run in other processes so their GIL is not the endpoint's. Results are printed and
written to bench/results/simulator_winrm.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "simulator_winrm.json"
USERNAME = "CMSCAN\\svc-bench"
PASSWORD = "Bench-Passw0rd!"
PATTERNS = ["NHS *", "*Oberthur*", "*IDEMIA*", "*Authentic*Web*Pack*"]


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def raise_file_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def addresses(count: int, seed: int) -> list[str]:
    """`count` loopback addresses in a random 127.N.0.0/16 block."""
    block = random.Random(seed).randint(32, 250)
    return [f"127.{block}.{1 + i // 250}.{1 + i % 250}" for i in range(count)]


@dataclass
class BenchHost:
    hostname: str
    output: str

    @property
    def fault(self) -> None:
        return None

    def timing(self) -> Any:
        from simulator.behaviour import Timing

        return Timing(0.0, 0.0, 0.0)

    def run_script(self, script: str, parameters: Mapping[str, object]) -> Any:
        from simulator.behaviour import ScriptResult

        return ScriptResult(self.output)


async def start_many(count: int, seed: int, https: bool) -> tuple[list[Any], Any]:
    from simulator.tls import FleetCA
    from simulator.winrm import Account, start_winrm

    account = Account(USERNAME, PASSWORD)
    ca = FleetCA.create(Path(tempfile.mkdtemp(prefix="cmscan-bench-")))
    output = json.dumps({"products": [{"name": "NHS Credential Management"}] * 20})
    endpoints = []
    for index, address in enumerate(addresses(count, seed)):
        host = BenchHost(f"pc-{index:05d}.bench.nhs.uk", output)
        endpoints.append(
            await start_winrm(
                host,
                address=address,
                account=account,
                http_port=5985,
                https_port=5986 if https else None,
                ca=ca,
            )
        )
    return endpoints, ca


async def bench_idle(count: int, seed: int) -> dict[str, Any]:
    import simulator.winrm  # noqa: F401 - imported before measuring, as a fleet would

    before = rss_mib()
    started = time.perf_counter()
    endpoints, ca = await start_many(count, seed, https=True)
    elapsed = time.perf_counter() - started
    after = rss_mib()
    issue_started = time.perf_counter()
    for endpoint in endpoints[:100]:
        ca.server_context(endpoint.host.hostname, endpoint.address)
    issue_each = (time.perf_counter() - issue_started) / min(100, len(endpoints))
    with_certificates = rss_mib()
    closing = time.perf_counter()
    for endpoint in endpoints:
        await endpoint.close()
    closed = time.perf_counter() - closing
    return {
        "endpoints": count,
        "listeners": count * 2,
        "start_s": round(elapsed, 3),
        "start_per_endpoint_us": round(elapsed / count * 1e6, 1),
        "rss_before_mib": round(before, 1),
        "rss_after_mib": round(after, 1),
        "rss_per_endpoint_kib": round((after - before) * 1024 / count, 2),
        "first_https_certificate_ms": round(issue_each * 1000, 2),
        "rss_per_issued_certificate_kib": round((with_certificates - after) * 1024 / 100, 1),
        "close_all_s": round(closed, 3),
    }


async def _client_process(
    targets: list[tuple[str, int | None]], clients: int, seconds: float
) -> bytes:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "clients",
        "--clients",
        str(clients),
        "--seconds",
        str(seconds),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    out, _ = await process.communicate(json.dumps(targets).encode())
    return out


async def bench_load(
    count: int, clients: int, processes: int, seconds: float, seed: int
) -> dict[str, Any]:
    endpoints, _ca = await start_many(count, seed, https=False)
    targets = [(e.address, e.http_port) for e in endpoints]
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    served_before = sum(e.requests_served for e in endpoints)
    # Clients run in other processes so that their GIL is not the endpoint's.
    started = time.perf_counter()
    outputs = await asyncio.gather(
        *(_client_process(targets, clients, seconds) for _ in range(processes))
    )
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    served = sum(e.requests_served for e in endpoints) - served_before
    shells_left = sum(e.open_shells for e in endpoints)
    for endpoint in endpoints:
        await endpoint.close()
    runs = [json.loads(out) for out in outputs]
    client = {
        "seconds": max(r["seconds"] for r in runs),
        "probes": sum(r["probes"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "p50_ms": max(r["p50_ms"] for r in runs),
        "p95_ms": max(r["p95_ms"] for r in runs),
    }
    server_cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (
        cpu_after.ru_stime - cpu_before.ru_stime
    )
    return {
        "endpoints": count,
        "client_processes": processes,
        "client_threads": clients * processes,
        "seconds": round(client["seconds"], 2),
        "probes": client["probes"],
        "errors": client["errors"],
        "probes_per_s": round(client["probes"] / client["seconds"], 1),
        "http_requests_served": served,
        "http_requests_per_s": round(served / client["seconds"], 1),
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_ms_per_request": round(server_cpu * 1000 / max(served, 1), 3),
        "server_cpu_share": round(server_cpu / wall, 2),
        "probe_latency_p50_ms": client["p50_ms"],
        "probe_latency_p95_ms": client["p95_ms"],
        "shells_left_open": shells_left,
    }


def run_clients(clients: int, seconds: float) -> None:
    """The client process: pypsrp probes (as cmscan's collector runs them) in threads."""
    from pypsrp.powershell import PowerShell, RunspacePool
    from pypsrp.wsman import WSMan

    targets = [tuple(t) for t in json.loads(sys.stdin.read())]
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def worker(number: int) -> None:
        rng = random.Random(number)
        while time.monotonic() < deadline:
            address, port = rng.choice(targets)
            started = time.perf_counter()
            try:
                with (
                    WSMan(
                        address,
                        port=port,
                        ssl=False,
                        auth="ntlm",
                        encryption="always",
                        username=USERNAME,
                        password=PASSWORD,
                        no_proxy=True,
                    ) as wsman,
                    RunspacePool(wsman) as pool,
                ):
                    shell = PowerShell(pool).add_script("probe").add_parameter("Patterns", PATTERNS)
                    shell.invoke()
            except Exception as exc:  # counted, the run goes on
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [0.0]
    json.dump(
        {
            "seconds": elapsed,
            "probes": len(latencies),
            "errors": len(errors),
            "first_errors": errors[:3],
            "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 1),
        },
        sys.stdout,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    idle = commands.add_parser("idle", help="start cost and memory of idle endpoints")
    idle.add_argument("--hosts", type=int, default=1000)
    load = commands.add_parser("load", help="requests per second under pypsrp clients")
    load.add_argument("--hosts", type=int, default=50)
    load.add_argument("--clients", type=int, default=32, help="threads per client process")
    load.add_argument("--processes", type=int, default=1, help="client processes")
    load.add_argument("--seconds", type=float, default=15.0)
    clients = commands.add_parser("clients", help=argparse.SUPPRESS)
    clients.add_argument("--clients", type=int, required=True)
    clients.add_argument("--seconds", type=float, required=True)
    for command in (idle, load):
        command.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    if args.command == "clients":
        run_clients(args.clients, args.seconds)
        return
    raise_file_limit()
    if args.command == "idle":
        result = asyncio.run(bench_idle(args.hosts, args.seed))
    else:
        result = asyncio.run(
            bench_load(args.hosts, args.clients, args.processes, args.seconds, args.seed)
        )
    result = {
        "bench": f"simulator_winrm {args.command}",
        "python": platform.python_version(),
        "cpus": __import__("os").cpu_count(),
        **result,
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(exist_ok=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous[args.command] = result
    RESULTS.write_text(json.dumps(previous, indent=2) + "\n")


if __name__ == "__main__":
    main()
