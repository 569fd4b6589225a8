"""`cmscan demo` as a new user runs it: a short run with a small fleet leaves everything behind."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import sqlalchemy as sa

from store.model import Host, HostState, Scan
from tests.daemon.harness import query, scalar


def test_a_short_demo_scans_exports_and_serves_metrics(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CMSCAN_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scanner",
            "demo",
            "--hosts",
            "40",
            "--seed",
            "7",
            "--duration",
            "22",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
        cwd=tmp_path,
    )
    metrics = ""
    try:
        config = directory / "cmscan.toml"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (directory / "unpatched.csv").exists():
            time.sleep(0.5)
        settings = tomllib.loads(config.read_text())
        listen = settings["daemon"]["listen"]
        metrics = httpx.get(f"http://{listen}/metrics", timeout=10).text
        token = (directory / "demo-token").read_text().strip()
        summary = httpx.get(
            f"http://{listen}/api/v1/summary",
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert summary.status_code == 200
        output, _ = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert "first sweep complete" in output
    assert "cmscan demo stopped." in output
    # The database: every host scanned at least once, and the campaign's rescans on top.
    url = settings["database_url"]
    assert scalar(url, sa.select(sa.func.count()).select_from(Host)) == 40
    unscanned = (
        sa.select(sa.func.count()).select_from(HostState).where(HostState.last_scan_at.is_(None))
    )
    assert scalar(url, unscanned) == 0
    assert scalar(url, sa.select(sa.func.count()).select_from(Scan)) >= 40
    # The CSV: the noncompliant hosts of the first sweep, one row each.
    with (directory / "unpatched.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    assert {row["status"] for row in rows} == {"noncompliant"}
    assert all(row["failing_rules"] for row in rows)
    # /metrics served per-CCG figures from the database while the demo ran.
    ccgs = {row.ccg_code for row in query(url, sa.select(Host.ccg_code).distinct())}
    for ccg in ccgs:
        assert f'cmscan_hosts{{ccg="{ccg}",status="compliant"}}' in metrics
    assert "cmscan_scans_total" in metrics
    # The config is left for the user to read and copy.
    assert "[credentials.default]" in (directory / "cmscan.toml").read_text()


def test_the_demo_token_file_is_private_from_the_start(tmp_path: Path) -> None:
    from scanner.demo.config import write_config

    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        '[credentials.default]\nusername = "u"\npassword_file = "/p"\n'
        '[winrm]\nca_file = "/ca.pem"\n[ssh]\nknown_hosts = "/kh"\n'
    )
    stale = tmp_path / "demo-token"
    stale.write_text("an earlier run's token\n")
    stale.chmod(0o644)
    config = write_config(tmp_path, fleet, listen="127.0.0.1:8180", token="t0ken")
    assert stale.read_text() == "t0ken\n"
    assert stale.stat().st_mode & 0o777 == 0o600
    assert tomllib.loads(config.read_text())["api"]["tokens"][0]["name"] == "demo"


async def test_a_failed_view_or_campaign_stops_the_demo(tmp_path: Path) -> None:
    from rich.console import Console

    from scanner.demo.run import Demo, DemoOptions

    demo = Demo(DemoOptions(directory=tmp_path), Console(file=io.StringIO()))
    stop = asyncio.Event()

    async def fine() -> None:
        return None

    async def broken() -> None:
        raise ConnectionError("simulator admin API went away")

    for body in (fine, broken):
        task = asyncio.create_task(body(), name="campaign")
        task.add_done_callback(lambda t: demo.stop_on_failure(t, stop))
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)  # done callbacks run on the next loop iteration
        if body is fine:
            assert not stop.is_set()
            assert demo.failure is None
    assert stop.is_set()
    assert isinstance(demo.failure, ConnectionError)
