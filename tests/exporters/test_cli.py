"""`cmscan status`, `export unpatched`, `api token` and `metrics serve`, run as a user runs them."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from config.settings import Settings
from exporters.auth import identify
from scanner.cli import app, common
from store.reports import figures
from tests.support import free_port

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.out, "width", 250)
    monkeypatch.setattr(common.err, "width", 250)


def cmscan(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CMSCAN_")}
    environment["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "scanner", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_status_prints_one_plain_row_per_ccg_when_piped(seeded_sqlite: str, tmp_path: Path) -> None:
    result = cmscan("status", "--db", seeded_sqlite, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    header, *groups, total = lines
    assert header[:4] == ["ccg", "name", "hosts", "compliant %"]
    assert header[-1] == "top failing rules"
    rows = {row[0]: dict(zip(header, row, strict=True)) for row in groups}
    assert set(rows) == {"00K", "15N", "unknown"}
    north = rows["00K"]
    assert north["name"] == "NHS Example North CCG"
    assert (north["hosts"], north["compliant %"], north["noncompliant"]) == ("6", "16.7", "2")
    assert "cm-installed (1)" in north["top failing rules"]
    assert total[:3] == ["all", "", "10"]
    assert "\x1b[" not in result.stdout  # no colour codes in a pipe


def test_status_as_json(seeded_sqlite: str) -> None:
    result = runner.invoke(app, ["status", "--db", seeded_sqlite, "--json", "--group", "practice"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["group"] == "practice"
    assert report["suspended_profiles"] == ["ops"]
    assert report["total"]["hosts"] == 10
    codes = {g["code"]: g for g in report["groups"]}
    assert codes["A81001"]["top_failing_rules"] == [
        {"rule": "cm-installed", "hosts": 1},
        {"rule": "cm-version", "hosts": 1},
    ]
    bad = runner.invoke(app, ["status", "--db", seeded_sqlite, "--group", "[/region]"])
    assert bad.exit_code == 2
    assert "--group must be one of icb, ccg, pcn, practice, not '[/region]'" in bad.stderr


def test_export_to_a_file_for_excel_and_as_json_to_stdout(
    seeded_sqlite: str, tmp_path: Path
) -> None:
    target = tmp_path / "unpatched.csv"
    result = cmscan(
        "export", "unpatched", "--db", seeded_sqlite, "-o", str(target), "--excel",
        "--ccg", "00K", "--include-unreachable", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "4 host(s) written to" in result.stderr
    body = target.read_bytes()
    assert body.startswith(b"\xef\xbb\xbfhostname,")
    assert body.count(b"\r\n") >= 5
    as_json = cmscan("export", "unpatched", "--db", seeded_sqlite, "--format", "json", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    assert [r["hostname"] for r in json.loads(as_json.stdout)] == [
        "pc02.a81001.nhs.uk",
        "pc03.a81001.nhs.uk",
        "pc08.b82001.nhs.uk",
    ]
    wrong = runner.invoke(app, ["export", "unpatched", "--db", seeded_sqlite, "--format", "xlsx"])
    assert wrong.exit_code == 2
    assert "--format must be csv or json" in wrong.stderr


def test_api_token_prints_a_token_once_and_config_lines_that_admit_it() -> None:
    result = runner.invoke(app, ["api", "token", "grafana", "--scope", "rescan"])
    assert result.exit_code == 0, result.stderr
    token, config = result.stdout.strip().split("\n", 1)
    assert token.startswith("cmscan_")
    assert token not in config
    settings = Settings(api=tomllib.loads(config)["api"])
    (configured,) = settings.api.tokens
    assert configured.scopes == ("read", "rescan")
    caller = identify(settings.api.tokens, token)
    assert caller is not None
    assert caller.name == "grafana"
    other = runner.invoke(app, ["api", "token", "grafana"]).stdout.split("\n", 1)[0]
    assert other != token
    bad = runner.invoke(app, ["api", "token", 'x"; evil = "1'])
    assert bad.exit_code == 2
    assert "token name" in bad.stderr
    assert runner.invoke(app, ["api", "token", "ops", "--scope", "admin"]).exit_code == 2


@pytest.mark.parametrize("given_by", ["flag", "setting"])
def test_metrics_serve_answers_from_the_database_and_stops_on_sigterm(
    seeded_sqlite: str, tmp_path: Path, given_by: str
) -> None:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CMSCAN_")}
    listen = ["--listen", f"127.0.0.1:{port}"]
    if given_by == "setting":  # daemon.listen is the default of --listen
        environment["CMSCAN_DAEMON__LISTEN"] = f"127.0.0.1:{port}"
        listen = []
    process = subprocess.Popen(
        [sys.executable, "-m", "scanner", "metrics", "serve", "--db", seeded_sqlite, *listen],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        body = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[0]
                time.sleep(0.1)
        assert 'cmscan_hosts{ccg="00K",status="noncompliant"} 2.0' in body
        assert "cmscan_database_up 1.0" in body
        assert "cmscan_build_info" in body
        assert "cmscan_scans_total" not in body  # this process scans nothing
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert f"serving http://127.0.0.1:{port}/metrics" in output


def test_the_status_table_prints_names_from_other_peoples_files_as_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scanner.cli import status

    console = Console(file=io.StringIO(), width=220, force_terminal=True, color_system=None)
    monkeypatch.setattr(status, "out", console)
    counts = figures.GroupCounts()
    counts.statuses["noncompliant"] = 2
    overview = status._Overview(
        level="ccg",
        now=datetime.now(UTC),
        policy="nhs-cis-baseline@00000000",
        figures=figures.StatusFigures(groups={("00K",): counts}, due=0),
        names={"00K": "[/bold] Practice [red]\nNorth"},
        top={("00K",): [("cm-[installed]", 2)]},
        daemons=0,
        queue=figures.QueueFigures(pending_rescans=0, oldest_pending=None),
        suspended=[],
    )
    status._table(overview, Settings())
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "[/bold] Practice [red] North" in text
    assert "cm-[installed] (2)" in text
