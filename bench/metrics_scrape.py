"""Benchmark: /metrics on a 100,000-host database (SQLite and PostgreSQL), cached and uncached.

Builds the database with bulk inserts (facts drawn from the simulator's profiles by their
weights, statuses and times spread like a real estate's), then measures:
- read: one uncached read of every deployment figure (what a refresh costs the database);
- cold scrape: the first GET /metrics of a fresh process, which has to wait for that read;
- cached scrape: GET /metrics while the snapshot is fresh;
- expired scrape: GET /metrics when the snapshot has just expired, which starts a refresh
  and serves the previous figures if the refresh takes longer than SCRAPE_WAIT.

    .venv/bin/python bench/metrics_scrape.py [--hosts 100000]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

The PostgreSQL URL names a server where a throwaway database may be created and dropped.
Results go to bench/results/metrics_scrape.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sweep_proc import machine as describe_machine  # bench/ is on sys.path when run as a script

from collectors.facts import Facts, OperatingSystem
from config.settings import Settings
from engine.grading import product_pairs
from engine.telemetry import Telemetry
from exporters.http import HttpContext, bind, build_app, serve
from exporters.prometheus import DeploymentCollector
from policy import default_policy, evaluate
from simulator.answers import Machine, facts
from simulator.profiles import PROFILES
from store import db
from store.model import Host, HostState, Organisation

RESULTS = Path(__file__).parent / "results"
NOW = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)
CCGS = 106  # sub-ICB locations in England
PRACTICES = 6300
DISTINCT_FACTS = 1000  # facts documents drawn, then shared out over the fleet
CHUNK = 5000


def _machine(index: int, rng: random.Random) -> Machine:
    return Machine(
        computer_name=f"PC{index:06d}",
        os=OperatingSystem(caption="Microsoft Windows 11 Pro", version="10.0.22631"),
        ordinary_software=(),
        readers=("Identiv uTrust 2700 R Smart Card Reader 0",),
        middleware_vendor=rng.choice(["oberthur", "idemia"]),
        install_date="20250601",
        user_logged_on=rng.random() < 0.6,
        reboot_sign=rng.choice(["component_based_servicing", "windows_update"]),
        chrome_policy_set=rng.random() < 0.5,
        duration_ms=900,
    )


def _facts_pool(rng: random.Random) -> list[Facts]:
    policy = default_policy()
    weighted = [p for p in PROFILES.values() if p.weight]
    chosen = rng.choices(weighted, [p.weight for p in weighted], k=DISTINCT_FACTS)
    return [facts(p.setup, _machine(i, rng), policy.watched_patterns) for i, p in enumerate(chosen)]


def build_fleet(url: str, hosts: int, *, noncompliant_only: bool = False, seed: int = 5) -> None:
    """Migrate `url` and fill it with `hosts` hosts in service, their state and organisations.

    With `noncompliant_only`, every host is noncompliant (what an export of 100,000 rows needs).
    """
    db.upgrade(url)
    rng = random.Random(seed)
    policy = default_policy()
    pool = []
    for item in _facts_pool(rng):
        verdict = evaluate(policy, item)
        if noncompliant_only and verdict.status != "noncompliant":
            continue
        pool.append((item.model_dump(mode="json"), verdict, product_pairs(item)))
    if noncompliant_only and not pool:
        raise RuntimeError("no noncompliant profile drawn")
    ccgs = [f"{i // 26 % 10}{i % 10}{chr(65 + i % 26)}" for i in range(CCGS)]
    engine = sa.create_engine(db.sync_url(url))
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.insert(Organisation),
                [
                    {"kind": "ccg", "code": c, "name": f"NHS Bench {c} CCG", "updated_at": NOW}
                    for c in ccgs
                ]
                + [
                    {
                        "kind": "practice",
                        "code": f"A{81000 + p:05d}",
                        "name": f"Practice {p}",
                        "parent_code": ccgs[p % CCGS],
                        "updated_at": NOW,
                    }
                    for p in range(PRACTICES)
                ],
            )
        for start in range(0, hosts, CHUNK):
            rows, states = [], []
            for index in range(start, min(hosts, start + CHUNK)):
                practice = index % PRACTICES
                rows.append(
                    {
                        "id": index + 1,
                        "hostname": f"pc{index:06d}.a{81000 + practice:05d}.nhs.uk",
                        "address": f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}",
                        "port": 5985,
                        "transport": "winrm",
                        "practice_code": f"A{81000 + practice:05d}",
                        "pcn_code": f"U{10000 + practice // 6:05d}",
                        "ccg_code": ccgs[practice % CCGS],
                        "icb_code": f"Q{practice % CCGS // 3:02d}",
                        "site": f"Site {practice}",
                        "credential_profile": "default",
                        "tags": [],
                        "enabled": True,
                        "first_seen_at": NOW - timedelta(days=60),
                        "last_seen_at": NOW,
                    }
                )
                states.append(_state(index + 1, rng, pool, noncompliant_only))
            with engine.begin() as connection:
                connection.execute(sa.insert(Host), rows)
                connection.execute(sa.insert(HostState), states)
        if url.startswith("postgresql"):
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE")
    finally:
        engine.dispose()


_STATE_KEYS = (
    "verdict",
    "policy_id",
    "policy_hash",
    "facts",
    "facts_at",
    "last_scan_at",
    "last_outcome",
    "last_success_at",
)


def _state(
    host_id: int, rng: random.Random, pool: list[Any], noncompliant_only: bool
) -> dict[str, Any]:
    stored, verdict, products = rng.choice(pool)
    success = NOW - timedelta(hours=rng.uniform(0, 24 * 14))
    outcome = "ok"
    status = verdict.status
    if not noncompliant_only:
        roll = rng.random()
        if roll < 0.02:  # never scanned yet
            return dict.fromkeys(_STATE_KEYS) | {
                "host_id": host_id,
                "status": "unknown",
                "status_since": NOW,
                "next_due_at": NOW,
                "failing_rules": [],
                "advisories": [],
                "products": [],
                "consecutive_failures": 0,
            }
        if roll < 0.20:  # off at the moment, as practice machines often are
            status, outcome = "unreachable", "timeout"
        elif roll < 0.21:
            status, outcome = "auth_failed", "auth_failed"
        elif roll < 0.22:
            status, outcome = "error", "probe_error"
    last_scan = success if outcome == "ok" else NOW - timedelta(hours=rng.uniform(0, 8))
    return {
        "host_id": host_id,
        "status": status,
        "status_since": last_scan,
        "failing_rules": verdict.failing_ids,
        "advisories": verdict.advisory_ids,
        "verdict": verdict.to_json(),
        "policy_id": verdict.policy_id,
        "policy_hash": verdict.policy_hash,
        "facts": stored,
        "products": products,
        "facts_at": success,
        "last_scan_at": last_scan,
        "last_outcome": outcome,
        "last_success_at": success,
        "consecutive_failures": 0 if outcome == "ok" else 1,
        "next_due_at": last_scan + timedelta(hours=rng.choice([4, 24])),
    }


@contextmanager
def throwaway_postgres(admin_url: str) -> Iterator[str]:
    """A fresh database on the given server, dropped afterwards."""
    admin = sa.create_engine(
        make_url(admin_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    name = f"cmscan_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield (
            make_url(admin_url)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, round(0.95 * len(ordered)) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "n": len(ordered),
    }


async def _reads(url: str, runs: int) -> tuple[list[float], int]:
    database = db.Database(url)
    try:
        collector = DeploymentCollector(database, Settings(database_url=url), clock=lambda: NOW)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            await collector.refresh()
            times.append(time.perf_counter() - started)
        size = len(list(collector.collect()))
        return times, size
    finally:
        await database.dispose()


def _scrapes(url: str, runs: int) -> dict[str, Any]:
    """Scrape the daemon's HTTP app over loopback; its snapshot's age is under our control."""
    settings = Settings(database_url=url, metrics={"cache": "10s"})
    offset = [0.0]  # seconds added to the collector's clock: ages the snapshot at will
    sock = bind("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        database = db.Database(url)
        app = build_app(HttpContext(database, settings, Telemetry().registry, clock=lambda: NOW))
        deployment = app.state.deployment
        deployment.timer = lambda: time.monotonic() + offset[0]
        box.update(loop=asyncio.get_running_loop(), stop=stop, deployment=deployment)
        ready.set()
        try:
            await serve(app, sock, stop)
        finally:
            await database.dispose()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    ready.wait(60)
    try:
        with httpx.Client(base_url=base, timeout=60) as client:

            def scrape() -> tuple[float, int]:
                started = time.perf_counter()
                response = client.get("/metrics")
                response.raise_for_status()
                return time.perf_counter() - started, len(response.content)

            def settle() -> None:
                task = box["deployment"]._task
                while task is not None and not task.done():
                    time.sleep(0.05)

            cold, size = scrape()
            settle()
            cached = [scrape()[0] for _ in range(runs)]
            expired = []
            for _ in range(runs):
                offset[0] += 3600  # the snapshot is now an hour old
                expired.append(scrape()[0])
                settle()  # let the refresh that scrape started finish
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(60)
        sock.close()
    return {
        "cold_scrape_ms": round(cold * 1000, 1),
        "cached_scrape": _ms(cached),
        "expired_scrape": _ms(expired),
        "exposition_bytes": size,
    }


def measure(url: str, hosts: int, runs: int) -> dict[str, Any]:
    started = time.perf_counter()
    build_fleet(url, hosts)
    built = time.perf_counter() - started
    reads, families = asyncio.run(_reads(url, runs))
    return {
        "hosts": hosts,
        "build_seconds": round(built, 1),
        "uncached_read": _ms(reads),
        "families": families,
        **_scrapes(url, runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CMSCAN_BENCH_POSTGRES_URL"),
        help="a PostgreSQL server URL on which a throwaway database may be created",
    )
    args = parser.parse_args()
    report: dict[str, Any] = {
        "benchmark": "metrics_scrape",
        "machine": {"python": platform.python_version(), **describe_machine()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        report["sqlite"] = measure(url, args.hosts, args.runs)
        _print("sqlite", report["sqlite"])
    if args.postgres:
        with throwaway_postgres(args.postgres) as url:
            report["postgresql"] = measure(url, args.hosts, args.runs)
            _print("postgresql", report["postgresql"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "metrics_scrape.json").write_text(json.dumps(report, indent=2) + "\n")


def _print(name: str, result: dict[str, Any]) -> None:
    print(
        f"{name} ({result['hosts']} hosts, built in {result['build_seconds']} s):"
        f" uncached read p50 {result['uncached_read']['p50_ms']} ms;"
        f" cold scrape {result['cold_scrape_ms']} ms;"
        f" cached scrape p50 {result['cached_scrape']['p50_ms']} ms"
        f" (p95 {result['cached_scrape']['p95_ms']});"
        f" expired scrape p50 {result['expired_scrape']['p50_ms']} ms"
        f" (p95 {result['expired_scrape']['p95_ms']});"
        f" {result['exposition_bytes']} bytes"
    )


if __name__ == "__main__":
    main()
