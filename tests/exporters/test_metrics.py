"""The deployment metrics: golden exposition, promtool, grouping, bounds, cache, database down."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporters.prometheus import (
    NAME_LIMIT,
    OTHER,
    PRODUCT_LIMIT,
    VERSION_LIMIT,
    DeploymentCollector,
    bound_products,
    product_name,
    product_version,
)
from store import db
from store.model import HostState
from tests.exporters.live import live_server
from tests.exporters.seed import NOW, settings
from tests.support import free_port, need_executable

GOLDEN = Path(__file__).parent / "golden" / "seeded.prom"
REGENERATE = "CMSCAN_REGENERATE_GOLDEN"
PATTERNS = ("NHS *", "*Oberthur*", "*IDEMIA*", "*Authentic*Web*Pack*")

# Values that differ from run to run or with the policy file's text: masked before comparing.
_VOLATILE = [
    (re.compile(r"^(cmscan_metrics_read_duration_seconds) .*$", re.M), r"\1 <duration>"),
    (re.compile(r'hash="[0-9a-f]+"'), 'hash="<hash>"'),
]


def _masked(text: str) -> str:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


async def _exposition(url: str, **extra: object) -> str:
    database = db.Database(url)
    try:
        collector = DeploymentCollector(database, settings(url, **extra), clock=lambda: NOW)
        await collector.refresh()
        registry = CollectorRegistry()
        registry.register(collector)
        return generate_latest(registry).decode()
    finally:
        await database.dispose()


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_exposition_matches_the_golden_file_on_both_backends(seeded_url: str) -> None:
    text = _masked(await _exposition(seeded_url))
    if os.environ.get(REGENERATE) == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        f"exposition changed; if intended, rerun with {REGENERATE}=1 and review the diff"
    )


async def test_every_status_of_every_group_has_a_series_and_no_hostname_is_a_label(
    seeded_sqlite: str,
) -> None:
    text = await _exposition(seeded_sqlite)
    hosts = _samples(text, "cmscan_hosts")
    ccgs = {dict(labels)["ccg"] for labels in hosts}
    assert ccgs == {"00K", "15N", "unknown"}  # pc10 has no CCG; retired pc09 is left out
    statuses = Counter(dict(labels)["ccg"] for labels in hosts)
    assert set(statuses.values()) == {6}
    assert hosts[(("ccg", "15N"), ("status", "auth_failed"))] == 0
    assert sum(hosts.values()) == 10
    assert "nhs.uk" not in text
    assert "pc0" not in text


async def test_several_group_levels_label_the_same_series(seeded_sqlite: str) -> None:
    text = await _exposition(seeded_sqlite, metrics={"group_by": ["icb", "ccg"], "cache": 0})
    hosts = _samples(text, "cmscan_hosts")
    assert hosts[(("ccg", "00K"), ("icb", "QHM"), ("status", "noncompliant"))] == 2
    assert hosts[(("ccg", "unknown"), ("icb", "unknown"), ("status", "compliant"))] == 1
    rules = _samples(text, "cmscan_rule_failures")
    key = (("ccg", "15N"), ("icb", "QHM"), ("rule", "ia-version"), ("severity", "required"))
    assert rules[key] == 1
    assert all({"icb", "ccg"} <= {k for k, _ in labels} for labels in rules)


def test_promtool_finds_no_problem_in_the_exposition(seeded_sqlite: str) -> None:
    promtool = need_executable("promtool", "prometheus (Debian package)")
    with live_server(settings(seeded_sqlite), clock=lambda: NOW) as base:
        body = httpx.get(f"{base}/metrics").content
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert checked.stdout.strip() == b"", checked.stdout.decode()


def test_a_database_that_cannot_be_reached_still_gives_a_scrape(tmp_path: Path) -> None:
    # Nothing listens on this port: every read of the database fails at once.
    url = f"postgresql+psycopg://cmscan@127.0.0.1:{free_port()}/cmscan"
    with live_server(settings(url), clock=lambda: NOW) as base:
        first = httpx.get(f"{base}/metrics", timeout=30)
        second = httpx.get(f"{base}/metrics", timeout=30)
    for response in (first, second):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = response.text
        assert _samples(text, "cmscan_database_up") == {(): 0}
        assert "cmscan_build_info" in text
        assert "cmscan_scans_in_flight" in text
        assert "cmscan_hosts{" not in text  # no figures rather than stale or made-up ones


async def test_a_snapshot_is_reused_within_the_cache_time(seeded_sqlite: str) -> None:
    database = db.Database(seeded_sqlite)
    seconds = [0.0]
    try:
        collector = DeploymentCollector(
            database,
            settings(seeded_sqlite, metrics={"cache": "1h"}),
            clock=lambda: NOW,
            timer=lambda: seconds[0],
        )
        await collector.prepare()
        first = collector.snapshot
        assert first is not None
        async with database.write() as session:
            await session.execute(sa.update(HostState).values(status="compliant"))
        seconds[0] += 3599
        await collector.prepare()
        assert collector.snapshot is first  # within metrics.cache: no query at all
        seconds[0] += 2
        await collector.prepare()
        # Past the cache time a refresh starts; on a busy machine the first read may have been
        # slow enough that this scrape is served the old figures while it runs, so wait for it.
        for _ in range(200):
            if collector.snapshot is not first:
                break
            await asyncio.sleep(0.05)
        refreshed = collector.snapshot
        assert refreshed is not None
        assert refreshed is not first
        assert sum(c.statuses["compliant"] for c in refreshed.status.groups.values()) == 10
    finally:
        await database.dispose()


async def test_a_slow_refresh_does_not_hold_up_a_scrape_that_has_figures(
    seeded_sqlite: str,
) -> None:
    database = db.Database(seeded_sqlite)
    gate = asyncio.Event()
    seconds = [0.0]
    try:
        collector = DeploymentCollector(
            database, settings(seeded_sqlite), clock=lambda: NOW, timer=lambda: seconds[0]
        )
        await collector.prepare()
        first = collector.snapshot
        original = collector.refresh
        seconds[0] += 3600

        async def slow() -> None:
            await gate.wait()
            await original()

        collector.refresh = slow  # type: ignore[method-assign]
        await collector.prepare()  # cache 0: starts a refresh, waits briefly, gives up
        assert collector.snapshot is first
        gate.set()
        await asyncio.sleep(0)
        assert collector._task is not None
        await collector._task
        assert collector.snapshot is not first
    finally:
        await database.dispose()


def test_product_names_and_versions_become_bounded_labels() -> None:
    assert product_name("NHS Credential Management 4.1 (x64)") == "NHS Credential Management"
    assert product_name("IDEMIA Authentic Web Pack v5.2.0.1") == "IDEMIA Authentic Web Pack"
    assert product_name("NHS  Port\nService") == "NHS Port Service"
    assert product_name("NHS " + "x" * 500) == ("NHS " + "x" * 500)[:NAME_LIMIT]
    assert product_version("1.4.2.0") == "1.4.2.0"
    assert product_version("") == "unknown"
    assert product_version("1.4.2.0-beta; DROP TABLE") == OTHER


def test_hostile_product_lists_stay_within_the_series_limits() -> None:
    raw: dict[tuple[tuple[str, ...], str, str], int] = {}
    for i in range(2000):
        raw[(("00K",), f"NHS Thing {chr(65 + i % 26)}{i}", f"{i}.0.0.{i % 7}")] = 1 + i % 5
    raw[(("00K",), "NHS Credential Management", "4.1.2.0")] = 5000
    raw[(("00K",), "nhs credential management", "4.1.2.0")] = 3
    raw[(("00K",), "Microsoft Edge", "131.0")] = 9000  # not watched: never reported
    bounded = bound_products(raw, PATTERNS)
    names = {name for _, name, _ in bounded}
    assert len(names) <= PRODUCT_LIMIT + 1
    assert OTHER in names
    assert "Microsoft Edge" not in names
    for name in names:
        versions = {v for _, n, v in bounded if n == name}
        assert len(versions) <= VERSION_LIMIT + 1
    # One product however it is capitalised, under its most common spelling.
    assert bounded[(("00K",), "NHS Credential Management", "4.1.2.0")] == 5003
    assert sum(bounded.values()) == sum(v for k, v in raw.items() if k[1] != "Microsoft Edge")


def test_golden_file_is_not_regenerated_by_accident() -> None:
    if os.environ.get(REGENERATE) == "1":
        pytest.skip("regenerating")
    assert GOLDEN.is_file(), f"missing {GOLDEN}: run the golden test with {REGENERATE}=1"


async def test_a_scrape_does_not_wait_for_a_refresh_known_to_be_slow(seeded_sqlite: str) -> None:
    database = db.Database(seeded_sqlite)
    gate = asyncio.Event()
    seconds = [0.0]
    try:
        collector = DeploymentCollector(
            database, settings(seeded_sqlite), clock=lambda: NOW, timer=lambda: seconds[0]
        )
        await collector.prepare()
        assert collector.snapshot is not None
        # As if reading the figures had taken two seconds (a very large fleet).
        slow_snapshot = dataclasses.replace(collector.snapshot, duration_s=2.0)
        collector._snapshot = slow_snapshot
        seconds[0] += 3600
        original = collector.refresh

        async def slow() -> None:
            await gate.wait()
            await original()

        collector.refresh = slow  # type: ignore[method-assign]
        await collector.prepare()
        assert collector.snapshot is slow_snapshot
        assert collector._task is not None
        assert not collector._task.done()  # the refresh runs on after the scrape has its answer
        gate.set()
        await collector._task
        assert collector.snapshot is not slow_snapshot
    finally:
        await database.dispose()


async def test_a_fault_in_reading_the_figures_empties_the_snapshot_and_is_logged(
    seeded_sqlite: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    database = db.Database(seeded_sqlite)
    try:
        collector = DeploymentCollector(database, settings(seeded_sqlite), clock=lambda: NOW)
        await collector.prepare()
        assert collector.snapshot is not None

        async def broken(*_args: object, **_kwargs: object) -> None:
            raise KeyError("unexpected row shape")

        monkeypatch.setattr("exporters.prometheus.read_snapshot", broken)
        await collector.refresh()
        assert collector.snapshot is None  # no stale figures passed off as current
        assert "deployment figures unavailable" in caplog.text
        assert "unexpected row shape" in caplog.text
    finally:
        await database.dispose()
