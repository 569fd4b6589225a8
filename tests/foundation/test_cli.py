"""The cmscan command as a user runs it: exit codes, messages, and what lands in the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CMSCAN = [sys.executable, "-m", "scanner"]


def cmscan(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CMSCAN_")}
    environment.update(env or {})
    environment["COLUMNS"] = "200"  # keep rich from wrapping the lines the tests read
    return subprocess.run(
        [*CMSCAN, *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_version_and_help(tmp_path: Path) -> None:
    assert cmscan("--version", cwd=tmp_path).stdout.startswith("cmscan ")
    help_text = cmscan("inventory", "import", "--help", cwd=tmp_path).stdout
    assert "--skip-invalid" in help_text
    assert "--ods" in help_text


def test_bad_rows_are_all_printed_and_nothing_is_imported(tmp_path: Path) -> None:
    (tmp_path / "hosts.csv").write_text(
        "hostname,address,ccg_code\npc01,10.0.0.1,00K\npc02,10.0.0.256,00K\npc03,,0000\npc04,,00K\n"
    )
    result = cmscan("inventory", "import", "hosts.csv", cwd=tmp_path)
    assert result.returncode == 1
    assert "hosts.csv:3: address: '10.0.0.256' is not an IPv4 or IPv6 address" in result.stderr
    assert "hosts.csv:4: ccg_code: '0000' is not a CCG code" in result.stderr
    assert "nothing was imported" in result.stderr
    listed = cmscan("inventory", "list", "--format", "json", cwd=tmp_path)
    assert listed.returncode == 0
    assert json.loads(listed.stdout) == []


def test_problems_in_the_ods_file_are_not_counted_as_inventory_rows(tmp_path: Path) -> None:
    (tmp_path / "hosts.csv").write_text("hostname,practice_code\npc01,A81001\n")
    (tmp_path / "epraccur.csv").write_text('"A81001","short"\n"A81002","row"\n')
    result = cmscan("inventory", "import", "hosts.csv", "--ods", "epraccur.csv", cwd=tmp_path)
    assert result.returncode == 1
    assert "epraccur.csv:2: 2 columns" in result.stderr
    assert "row(s) have problems" not in result.stderr  # hosts.csv's one row is fine
    assert "hosts.csv: nothing was imported" in result.stderr


def test_import_then_list_as_csv(tmp_path: Path) -> None:
    (tmp_path / "hosts.csv").write_text(
        "hostname,ccg_code,site\npc01,00K,=cmd|' /C calc'!A0\npc02,15N,Annexe\n"
    )
    result = cmscan("inventory", "import", "hosts.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hosts added" in result.stdout
    assert (tmp_path / "cmscan.db").exists()  # the default database, migrated on first use
    listed = cmscan("inventory", "list", "--ccg", "00k", "--format", "csv", cwd=tmp_path)
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("hostname,address,port,transport")
    assert len(lines) == 2
    assert "'=cmd" in lines[1]  # a formula in someone's site name stays text


def test_listing_shows_bracketed_site_names_as_written(tmp_path: Path) -> None:
    (tmp_path / "hosts.csv").write_text("hostname,site\npc01,[/x] [bold]Annexe\n")
    assert cmscan("inventory", "import", "hosts.csv", cwd=tmp_path).returncode == 0
    listed = cmscan("inventory", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "[/x] [bold]Annexe" in listed.stdout


def test_invalid_settings_exit_2_listing_each_problem(tmp_path: Path) -> None:
    (tmp_path / "cmscan.toml").write_text('log_level = "loud"\n')
    result = cmscan("inventory", "list", cwd=tmp_path, env={"CMSCAN_DATABASE_URL": "oracle://x"})
    assert result.returncode == 2
    assert "database_url (environment CMSCAN_DATABASE_URL)" in result.stderr
    assert "log_level (config file cmscan.toml)" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("inventory", "import", "absent.csv"), "absent.csv: no such file"),
        # Messages are text, not markup: brackets in names are printed, and never crash.
        (("inventory", "import", "[/x] absent.csv"), "[/x] absent.csv: no such file"),
        (("inventory", "import", "hosts.xlsx"), "cannot tell the format"),
        (("db", "upgrade", "--db", "sqlite:////no/such/dir/x.db"), "does not exist"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = cmscan(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_database_that_does_not_answer_exits_75(tmp_path: Path) -> None:
    # EX_TEMPFAIL, not 2: a service manager restarts a daemon started before PostgreSQL.
    from tests.support import free_port

    url = f"postgresql+psycopg://cmscan:s3cret-pw@127.0.0.1:{free_port()}/cmscan"
    for args in (("daemon",), ("status",), ("db", "upgrade")):
        result = cmscan(*args, "--db", url, cwd=tmp_path)
        assert result.returncode == 75, (args, result.stderr)
        assert "127.0.0.1" in result.stderr
        assert "s3cret-pw" not in result.stderr


def test_db_flag_overrides_everything(tmp_path: Path) -> None:
    (tmp_path / "cmscan.toml").write_text('database_url = "sqlite:///from-file.db"\n')
    result = cmscan("db", "upgrade", "--db", f"sqlite:///{tmp_path / 'flag.db'}", cwd=tmp_path)
    assert result.returncode == 0
    assert (tmp_path / "flag.db").exists()
    assert not (tmp_path / "from-file.db").exists()
