"""Dashboard access over the API and in /metrics: counts for everyone, names for the RA only."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from engine.access import import_access
from exporters.prometheus import DeploymentCollector
from store import db
from tests.access.reports import WITHOUT_CODE, write_report
from tests.exporters.live import live_server
from tests.exporters.seed import NOW, READ_TOKEN, settings

READ = {"Authorization": f"Bearer {READ_TOKEN}"}


async def _imported(url: str, tmp_path: Path) -> None:
    database = db.Database(url)
    try:
        result = await import_access(database, path=write_report(tmp_path / "u.csv"), now=NOW)
        assert result.written
    finally:
        await database.dispose()


async def test_the_api_serves_the_view_and_the_gaps_to_a_token_holder(
    seeded_sqlite: str, tmp_path: Path
) -> None:
    await _imported(seeded_sqlite, tmp_path)
    with live_server(settings(seeded_sqlite), clock=lambda: NOW) as base:
        async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30) as client:
            for path in ("/access/practices", "/export/access-gaps.csv"):
                assert (await client.get(path)).status_code == 401
            view = (await client.get("/access/practices", headers=READ)).json()
            one = await client.get("/access/practices", headers=READ, params={"ccg": "15N"})
            gaps = await client.get("/export/access-gaps.csv", headers=READ)
            bad = await client.get("/export/access-gaps.csv", headers=READ, params={"format": "x"})
            schema = (await client.get(f"{base}/openapi.json")).json()
    readiness = {p["practice_code"]: p["readiness"] for p in view["practices"]}
    assert readiness == {"A81001": "ready", "A81002": "no_machines", "B82001": "no_users"}
    assert [p["practice_code"] for p in one.json()["practices"]] == ["B82001"]
    assert gaps.status_code == 200
    assert gaps.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(gaps.text)))
    assert {(r["user_id"], r["practice_code"]) for r in rows} == WITHOUT_CODE
    assert bad.status_code == 422
    assert {"/api/v1/access/practices", "/api/v1/export/access-gaps.csv"} <= set(schema["paths"])


async def test_metrics_count_access_per_ccg_without_personal_data(
    seeded_url: str, tmp_path: Path
) -> None:
    database = db.Database(seeded_url)
    try:
        collector = DeploymentCollector(database, settings(seeded_url), clock=lambda: NOW)
        await collector.refresh()
        registry = CollectorRegistry()
        registry.register(collector)
        before = generate_latest(registry).decode()
        await _imported(seeded_url, tmp_path)
        await collector.refresh()
        after = generate_latest(registry).decode()
    finally:
        await database.dispose()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(after)
        for sample in family.samples
        if sample.name.startswith("cmscan_access_")
    }
    assert samples[("cmscan_access_users", (("ccg", "00K"),))] == 2
    assert samples[("cmscan_access_users_missing_codes", (("ccg", "15N"),))] == 2
    assert samples[("cmscan_access_practices", (("ccg", "15N"), ("readiness", "no_users")))] == 1
    assert samples[("cmscan_access_practices", (("ccg", "00K"), ("readiness", "ready")))] == 1
    assert samples[("cmscan_access_report_timestamp_seconds", ())] == NOW.timestamp()
    # Before any report: every series is there and reads 0, so alerts and panels have data.
    assert 'cmscan_access_users{ccg="00K"} 0.0' in before
    assert "cmscan_access_report_timestamp_seconds" not in before
    for personal in ("5555555555", "Smith", "Anna", "HYPERLINK"):
        assert personal not in after
