"""Benchmark: policy evaluations per second, and re-grading 10,000 hosts from stored facts."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sweep_proc import machine as describe_machine  # bench/ is on sys.path when run as a script

from collectors.facts import Facts, OperatingSystem, Product
from engine.regrade import apply_policy
from policy import Policy, default_policy, evaluate, load_policy_text
from policy.loader import default_policy_text
from simulator.answers import Machine, facts
from simulator.profiles import PROFILES
from store import db
from store.model import Host, HostState

RESULTS = Path(__file__).parent / "results"
T0 = datetime(2025, 10, 1, tzinfo=UTC)
# CM 4.1.2.0 or nothing: changes the status of every host on an older CM.
STRICT = ('version: ">= 1.4.2.0"', 'version: ">= 4.1.2.0"')


def machine(index: int, rng: random.Random) -> Machine:
    return Machine(
        computer_name=f"PC{index:05d}",
        os=OperatingSystem(caption="Microsoft Windows 11 Pro", version="10.0.22631"),
        ordinary_software=(
            Product(name="Microsoft Edge", version="131.0", publisher="Microsoft", view="x86"),
        ),
        readers=("Identiv uTrust 2700 R Smart Card Reader 0",),
        middleware_vendor=rng.choice(["oberthur", "idemia"]),
        install_date="20250601",
        user_logged_on=rng.random() < 0.6,
        reboot_sign=rng.choice(["component_based_servicing", "windows_update"]),
        chrome_policy_set=rng.random() < 0.5,
        duration_ms=900,
    )


def fleet_facts(count: int, patterns: tuple[str, ...], seed: int = 11) -> list[Facts]:
    """Facts of `count` hosts drawn from the simulator's profiles by their weights."""
    rng = random.Random(seed)
    weighted = [(p, p.weight) for p in PROFILES.values() if p.weight]
    profiles = rng.choices([p for p, _ in weighted], [w for _, w in weighted], k=count)
    return [facts(p.setup, machine(i, rng), patterns) for i, p in enumerate(profiles)]


def bench_evaluate(policy: Policy, sample: list[Facts], evaluations: int) -> dict[str, Any]:
    started = time.perf_counter()
    done = 0
    noncompliant = 0
    while done < evaluations:
        for item in sample:
            noncompliant += evaluate(policy, item).status == "noncompliant"
            done += 1
            if done == evaluations:
                break
    elapsed = time.perf_counter() - started
    return {
        "evaluations": evaluations,
        "seconds": round(elapsed, 3),
        "per_second": round(evaluations / elapsed),
        "noncompliant_share": round(noncompliant / evaluations, 3),
    }


async def seed(database: db.Database, policy: Policy, items: list[Facts]) -> None:
    hosts = [
        {
            "hostname": f"pc{i:05d}.example.nhs.uk",
            "port": 5985,
            "transport": "winrm",
            "ccg_code": f"{10 + i % 30:02d}K",
            "practice_code": f"A{81000 + i // 8:05d}",
            "tags": [],
            "enabled": True,
            "credential_profile": "default",
            "first_seen_at": T0,
            "last_seen_at": T0,
        }
        for i in range(len(items))
    ]
    async with database.write() as session:
        await session.execute(sa.insert(Host), hosts)
        ids = (await session.execute(sa.select(Host.id).order_by(Host.id))).scalars().all()
        states = []
        for host_id, item in zip(ids, items, strict=True):
            verdict = evaluate(policy, item)
            states.append(
                {
                    "host_id": host_id,
                    "status": verdict.status,
                    "status_since": T0,
                    "facts": item.model_dump(mode="json"),
                    "facts_at": T0,
                    "verdict": verdict.to_json(),
                    "failing_rules": verdict.failing_ids,
                    "advisories": verdict.advisory_ids,
                    "policy_id": policy.id,
                    "policy_hash": policy.content_hash,
                    "last_outcome": "ok",
                }
            )
        await session.execute(sa.insert(HostState), states)


async def bench_regrade(url: str, hosts: int) -> dict[str, Any]:
    baseline = default_policy()
    strict = load_policy_text(default_policy_text().replace(*STRICT), "strict.yaml")
    db.upgrade(url)
    database = db.Database(url)
    try:
        await seed(database, baseline, fleet_facts(hosts, baseline.watched_patterns))
        runs = {}
        for name, policy in (("strict", strict), ("baseline again", baseline)):
            started = time.perf_counter()
            report = await apply_policy(database, policy, applied_by="bench", now=T0)
            runs[name] = {
                "seconds": round(time.perf_counter() - started, 3),
                "regraded": report.regraded,
                "changed": report.changed,
            }
        started = time.perf_counter()
        dry = await apply_policy(database, strict, applied_by="bench", dry_run=True)
        runs["dry run"] = {
            "seconds": round(time.perf_counter() - started, 3),
            "regraded": dry.regraded,
            "changed": dry.changed,
        }
        return runs
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evaluations", type=int, default=100_000)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CMSCAN_BENCH_POSTGRES_URL"),
        help="also re-grade on this (empty) PostgreSQL database; it is written to",
    )
    args = parser.parse_args()
    policy = default_policy()
    report: dict[str, Any] = {
        "benchmark": "policy_eval",
        "machine": {"python": platform.python_version(), **describe_machine()},
        "evaluate": bench_evaluate(
            policy, fleet_facts(1000, policy.watched_patterns), args.evaluations
        ),
    }
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        report["regrade_sqlite"] = {
            "hosts": args.hosts,
            **asyncio.run(bench_regrade(url, args.hosts)),
        }
    if args.postgres:
        report["regrade_postgresql"] = {
            "hosts": args.hosts,
            **asyncio.run(bench_regrade(args.postgres, args.hosts)),
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "policy_eval.json").write_text(json.dumps(report, indent=2) + "\n")
    ev = report["evaluate"]
    print(f"evaluate: {ev['evaluations']} in {ev['seconds']} s ({ev['per_second']}/s)")
    for key in ("regrade_sqlite", "regrade_postgresql"):
        if key in report:
            runs = {k: v for k, v in report[key].items() if isinstance(v, dict)}
            text = "; ".join(
                f"{name}: {r['seconds']} s, {r['changed']} of {r['regraded']} changed"
                for name, r in runs.items()
            )
            print(f"{key} ({report[key]['hosts']} hosts): {text}")


if __name__ == "__main__":
    main()
