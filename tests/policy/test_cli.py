"""The `cmscan policy` and `cmscan waive` commands, end to end on a SQLite database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from policy import default_policy
from policy.loader import default_policy_text
from scanner.cli import app, common
from scanner.cli.waive import parse_until
from store import db
from store.model import PolicyVersion
from tests.policy import builders as b
from tests.policy.store_support import Seed, seed

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tables wrap at the console width; a wide one keeps each row on one line.
    monkeypatch.setattr(common.out, "width", 250)
    monkeypatch.setattr(common.err, "width", 250)


@pytest.fixture
def url(tmp_path: Path) -> str:
    database_url = f"sqlite:///{tmp_path / 'cmscan.db'}"
    db.upgrade(database_url)

    async def populate() -> None:
        database = db.Database(database_url)
        try:
            await seed(
                database,
                default_policy(),
                [
                    Seed("pc1.example.nhs.uk", b.facts([b.cm("4.1.0.0"), b.idemia()])),
                    Seed("pc2.example.nhs.uk", b.facts(dotnet=461814), ccg="15N"),
                    Seed("pc3.example.nhs.uk", None),
                ],
            )
        finally:
            await database.dispose()

    asyncio.run(populate())
    return database_url


def cmscan(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, old: str = "", new: str = "") -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(default_policy_text().replace(old, new), encoding="utf-8")
    return path


def test_check(tmp_path: Path) -> None:
    code, stdout, _ = cmscan("policy", "check", str(write(tmp_path)))
    assert code == 0
    assert "valid policy nhs-cis-baseline (9 required and 4 advisory rules" in stdout
    bad = write(tmp_path, "severity: advisory", "severity: optional")
    code, stdout, stderr = cmscan("policy", "check", str(bad))
    assert code == 1
    lines = stdout.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(f"{bad}:")
    assert lines[0].endswith(".severity: Input should be 'required' or 'advisory'")
    assert "4 problems; the policy is not valid" in stderr
    code, stdout, _ = cmscan("policy", "check", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert stdout == f"{tmp_path / 'nope.yaml'}: no such file\n"


def test_show(url: str) -> None:
    code, stdout, _ = cmscan("policy", "show", "--db", url)
    assert code == 0
    assert "built-in default (no policy has been applied)" in stdout
    assert "│ dotnet-48 " in stdout
    code, stdout, _ = cmscan("policy", "show", "--yaml", "--db", url)
    assert (code, stdout) == (0, default_policy_text())


def test_apply_regrades_and_reports_per_ccg(url: str, tmp_path: Path) -> None:
    strict = write(tmp_path, 'version: ">= 1.4.2.0"', 'version: ">= 4.1.2.0"')
    code, stdout, _ = cmscan("policy", "apply", str(strict), "--dry-run", "--db", url)
    assert code == 0
    assert "Dry run: applying nhs-cis-baseline@" in stdout
    assert "re-grade 2 hosts" in stdout
    assert "1 would change status" in stdout
    code, stdout, _ = cmscan("policy", "apply", str(strict), "--by", "alice", "--db", url)
    assert code == 0
    assert "as policy version #1 by alice; re-graded 2 hosts" in stdout
    assert "1 changed status" in stdout
    assert "│ 00K │                0 │                   1 │" in stdout
    code, stdout, _ = cmscan("policy", "show", "--db", url)
    assert "by alice (policy version #1)" in stdout


def test_apply_a_policy_watching_more_products(url: str, tmp_path: Path) -> None:
    wider = write(
        tmp_path, '  - "*Authentic*Web*Pack*"', '  - "*Authentic*Web*Pack*"\n  - "*SafeNet*"'
    )
    code, stdout, _ = cmscan("policy", "apply", str(wider), "--db", url)
    assert code == 0
    assert "2 hosts were scanned without the watched pattern(s) *SafeNet*" in stdout
    assert "Run the command again with --rescan" in stdout
    code, stdout, _ = cmscan("policy", "apply", str(wider), "--rescan", "--db", url)
    assert "Queued rescan request #1 for 2 hosts" in stdout


def test_apply_refuses_an_invalid_file(url: str, tmp_path: Path) -> None:
    code, stdout, _ = cmscan(
        "policy", "apply", str(write(tmp_path, "format: 1", "format: 9")), "--db", url
    )
    assert code == 1
    assert "unsupported policy format 9" in stdout


def test_explain(url: str) -> None:
    code, stdout, _ = cmscan("policy", "explain", "pc2", "--db", url)
    assert code == 1  # noncompliant
    assert "pc2.example.nhs.uk: noncompliant" in stdout
    assert "│ dotnet-48 " in stdout
    assert ".NET Framework release 461814 < 528040 (4.8)" in stdout
    assert "not applicable" in stdout  # port-service on CM 4.1
    code, stdout, _ = cmscan("policy", "explain", "PC1.example.nhs.uk", "--db", url)
    assert code == 0
    assert "NHS Credential Management 4.1.0.0 >= 1.4.2.0" in stdout
    code, _, stderr = cmscan("policy", "explain", "pc3", "--db", url)
    assert code == 1
    assert "pc3.example.nhs.uk has no stored facts yet (status unknown)" in stderr
    code, _, stderr = cmscan("policy", "explain", "nowhere", "--db", url)
    assert code == 2
    assert "'nowhere' is not in the inventory" in stderr


def test_waive_grant_list_revoke(url: str) -> None:
    code, stdout, _ = cmscan(
        "waive",
        "pc2",
        "--rule",
        "dotnet-48",
        "--until",
        "2099-12-31",
        "--reason",
        "new PC on order",
        "--by",
        "alice",
        "--db",
        url,
    )
    assert code == 0, stdout
    assert (
        "Waiver #1: pc2.example.nhs.uk is excused from dotnet-48 until 2099-12-31 23:59 UTC"
        " (by alice)." in stdout
    )
    assert "Re-graded 1 host; 1 changed status." in stdout
    code, stdout, _ = cmscan("policy", "explain", "pc2", "--db", url)
    assert code == 0
    assert "waived" in stdout
    code, stdout, _ = cmscan("waive", "--list", "--db", url)
    assert (
        "│ 1  │ pc2.example.nhs.uk │ dotnet-48 │ 2099-12-31 23:59 UTC │ active │ alice │" in stdout
    )
    code, stdout, _ = cmscan(
        "waive",
        "--practice",
        "a81001",
        "--rule",
        "smartcard-reader",
        "--until",
        "30d",
        "--reason",
        "no readers yet",
        "--db",
        url,
    )
    assert code == 0
    assert "practice A81001 is excused from smartcard-reader" in stdout
    code, stdout, _ = cmscan("waive", "--revoke", "1", "--by", "bob", "--db", url)
    assert code == 0
    assert "Revoked waiver #1 (dotnet-48)." in stdout
    assert "1 changed status" in stdout
    code, stdout, _ = cmscan("waive", "--list", "--db", url)
    assert "pc2" not in stdout
    code, stdout, _ = cmscan("waive", "--list", "--all", "--db", url)
    assert "revoked" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["pc2", "--rule", "dotnet48", "--until", "30d", "--reason", "r"],
            "unknown rule 'dotnet48'; the active policy nhs-cis-baseline@",
        ),
        (
            ["pc2", "--rule", "dotnet-48", "--until", "soon", "--reason", "r"],
            "--until: 'soon' is not a date (2025-12-31), a date-time or a duration (30d)",
        ),
        (["pc2", "--rule", "dotnet-48", "--until", "2001-01-01", "--reason", "r"], "in the past"),
        (["pc2", "--rule", "dotnet-48"], "a waiver needs --until, --reason"),
        (
            ["nowhere", "--rule", "dotnet-48", "--until", "30d", "--reason", "r"],
            "'nowhere' is not in the inventory",
        ),
        (["pc2", "--list"], "give a HOST or --practice to grant a waiver, or --list, or --revoke"),
        ([], "give a HOST or --practice to grant a waiver, or --list, or --revoke"),
        (["--all"], "give a HOST or --practice"),
        (["--revoke", "7"], "no waiver #7"),
    ],
)
def test_waive_mistakes(url: str, args: list[str], message: str) -> None:
    code, _, stderr = cmscan("waive", *args, "--db", url)
    assert code == 2
    assert message in " ".join(stderr.split())


def test_waive_lists_valid_rules_for_an_unknown_one(url: str) -> None:
    _, _, stderr = cmscan(
        "waive", "pc2", "--rule", "x", "--until", "1d", "--reason", "r", "--db", url
    )
    assert "has: cm-installed, cm-version, port-service," in " ".join(stderr.split())


NOW = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-12-31", datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("2025-12-31T17:30", datetime(2025, 12, 31, 17, 30, tzinfo=UTC)),
        ("2025-12-31T17:30+01:00", datetime(2025, 12, 31, 16, 30, tzinfo=UTC)),
        ("30d", NOW + timedelta(days=30)),
        (" 2w ", NOW + timedelta(weeks=2)),
    ],
)
def test_until(text: str, expected: datetime) -> None:
    assert parse_until(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["", "tomorrow", "2025-13-01", "-3d", "1y"])
def test_bad_until(text: str) -> None:
    with pytest.raises(ValueError, match="is not a date"):
        parse_until(text, now=NOW)


def test_an_unusable_stored_policy_is_reported(url: str) -> None:
    async def store_bad_policy() -> None:
        database = db.Database(url)
        try:
            async with database.write() as session:
                session.add(
                    PolicyVersion(
                        policy_id="future",
                        content_hash="0" * 64,
                        content="format: 2\n",
                        applied_by="newer cmscan",
                    )
                )
        finally:
            await database.dispose()

    asyncio.run(store_bad_policy())
    for args in (
        ["policy", "show"],
        ["policy", "explain", "pc1"],
        ["waive", "pc1", "--rule", "x", "--until", "1d", "--reason", "r"],
        ["probe", "pc1", "--port", "1"],
    ):
        code, _, stderr = cmscan(*args, "--db", url)
        assert code == 2, args
        assert "the active policy stored in the database cannot be used:" in stderr
        assert "policy version 1:1:9: format: unsupported policy format 2" in stderr
