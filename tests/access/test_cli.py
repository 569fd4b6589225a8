"""`cmscan access` and `cmscan export access-gaps`, run as a user runs them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tests.access.reports import BAD_ROWS, WITHOUT_CODE, write_report
from tests.exporters.test_cli import cmscan

KEYS = {
    "practice_code",
    "practice_name",
    "pcn_code",
    "ccg_code",
    "users_with_access",
    "users_missing_codes",
    "machines_ready",
    "machines",
    "readiness",
}


def test_a_report_with_three_bad_lines_is_refused_naming_each(
    seeded_sqlite: str, tmp_path: Path
) -> None:
    report = write_report(tmp_path / "bad.csv", BAD_ROWS)
    result = cmscan("access", "import", str(report), "--db", seeded_sqlite, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    named = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert [line.split(":")[2] for line in named] == ["3", "4", "5"], result.stderr
    assert "nothing was imported" in result.stderr
    status = cmscan("access", "status", "--json", "--db", seeded_sqlite, cwd=tmp_path)
    practices = json.loads(status.stdout)["practices"]
    assert all(p["users_with_access"] == p["users_missing_codes"] == 0 for p in practices)


def test_import_status_and_gaps_as_a_user_runs_them(seeded_sqlite: str, tmp_path: Path) -> None:
    report = write_report(tmp_path / "users.csv")
    dry = cmscan("access", "import", str(report), "--dry-run", "--db", seeded_sqlite, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "Would add 7" in dry.stdout
    assert "nothing was written" in dry.stdout
    done = cmscan("access", "import", str(report), "--db", seeded_sqlite, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 repeated row(s) collapsed" in done.stdout
    assert "any of B0258, B0360, B0560, B0945" in done.stdout
    assert "not practices in the inventory (users): RXH (1)" in done.stderr
    # Personal data stays out of what the command says.
    assert "Smith" not in done.stdout + done.stderr
    assert "555555555501" not in done.stdout + done.stderr

    status = cmscan("access", "status", "--json", "--db", seeded_sqlite, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert set(document) == {"practices"}
    assert all(set(p) == KEYS for p in document["practices"])
    readiness = {p["practice_code"]: p["readiness"] for p in document["practices"]}
    assert readiness == {"A81001": "ready", "A81002": "no_machines", "B82001": "no_users"}

    by_ccg = cmscan(
        "access", "status", "--group", "ccg", "--json", "--db", seeded_sqlite, cwd=tmp_path
    )
    groups = {g["ccg_code"]: g for g in json.loads(by_ccg.stdout)["groups"]}
    assert groups["00K"]["users_with_access"] == 2
    assert groups["00K"]["ccg_name"] == "NHS Example North CCG"
    assert groups["15N"]["practices_by_readiness"]["no_users"] == 1

    table = cmscan("access", "status", "--db", seeded_sqlite, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "1 of 3 practice(s) ready." in table.stdout

    gaps = tmp_path / "gaps.csv"
    export = cmscan("export", "access-gaps", "-o", str(gaps), "--db", seeded_sqlite, cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    assert "4 user-practice gap(s) written" in export.stderr
    rows = list(csv.DictReader(io.StringIO(gaps.read_text(encoding="utf-8"))))
    assert {(r["user_id"], r["practice_code"]) for r in rows} == WITHOUT_CODE
    only = cmscan("export", "access-gaps", "--ccg", "15n", "--db", seeded_sqlite, cwd=tmp_path)
    assert {r["practice_code"] for r in csv.DictReader(io.StringIO(only.stdout))} == {"B82001"}


def test_purge_asks_first_and_then_removes_everyone(seeded_sqlite: str, tmp_path: Path) -> None:
    report = write_report(tmp_path / "users.csv")
    assert (
        cmscan("access", "import", str(report), "--db", seeded_sqlite, cwd=tmp_path).returncode == 0
    )
    refused = cmscan("access", "purge", "--db", seeded_sqlite, cwd=tmp_path)
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    done = cmscan("access", "purge", "--yes", "--db", seeded_sqlite, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Removed 7 user(s)" in done.stdout
    gaps = cmscan("export", "access-gaps", "--db", seeded_sqlite, cwd=tmp_path)
    assert gaps.stdout.strip().count("\n") == 0  # the header only


def test_an_unreadable_report_and_an_empty_one_say_so(seeded_sqlite: str, tmp_path: Path) -> None:
    missing = cmscan(
        "access", "import", str(tmp_path / "nope.csv"), "--db", seeded_sqlite, cwd=tmp_path
    )
    assert missing.returncode == 2
    assert "nope.csv: no such file" in missing.stderr
    empty = write_report(
        tmp_path / "empty.csv", ["User ID;Surname;Forename;Organisation Code;Activity Codes"]
    )
    refused = cmscan("access", "import", str(empty), "--db", seeded_sqlite, cwd=tmp_path)
    assert refused.returncode == 2
    assert "lists no users" in refused.stderr
    assert "cmscan access purge" in refused.stderr


def test_unusual_headers_are_mapped_in_the_config(seeded_sqlite: str, tmp_path: Path) -> None:
    report = tmp_path / "odd.csv"
    report.write_text(
        "Staff Number,Person,Site,Activities\n555555555501,Anna Smith,A81001,B0360\n",
        encoding="utf-8",
    )
    config = tmp_path / "cmscan.toml"
    config.write_text(
        '[access.columns]\nuser_id = "Staff Number"\nname = "Person"\norganisation = "Site"\n',
        encoding="utf-8",
    )
    done = cmscan(
        "access", "import", str(report), "--db", seeded_sqlite, "-c", str(config), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "1 user(s) at 1 organisation(s)" in done.stdout
    config.write_text('[access.columns]\nuser_uuid = "Staff Number"\n', encoding="utf-8")
    wrong = cmscan(
        "access", "import", str(report), "--db", seeded_sqlite, "-c", str(config), cwd=tmp_path
    )
    assert wrong.returncode == 2
    assert "access.columns" in wrong.stderr
