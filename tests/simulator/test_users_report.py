"""The CIM Users report a fleet writes: its format, its mix of users and where sim.json puts it."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from simulator.fleet import Fleet, FleetOptions, build_fleet
from simulator.fleet_thread import FleetThread
from simulator.run_options import RunOptions
from simulator.users_report import GRANTING_CODES, users_report_csv

HEADER = "User ID;Surname;Forename;Organisation Code;Organisation Name;Role Code;Activity Codes"


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))[1:]


def _codes(cell: str) -> set[str]:
    return {code.strip().upper() for code in cell.split(";") if code.strip()}


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return build_fleet(FleetOptions(hosts=600, seed=3))


def test_the_report_is_the_same_for_a_seed_and_differs_between_seeds(fleet: Fleet) -> None:
    assert users_report_csv(fleet) == users_report_csv(build_fleet(FleetOptions(600, seed=3)))
    other = build_fleet(FleetOptions(hosts=600, seed=4))
    assert users_report_csv(other) != users_report_csv(fleet)


def test_the_report_is_saved_as_cim_and_excel_save_it(fleet: Fleet) -> None:
    data = users_report_csv(fleet)
    assert data.startswith(b"\xef\xbb\xbf" + HEADER.encode() + b"\r\n")
    text = data.decode("utf-8-sig")
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    assert any(not line.isascii() for line in text.splitlines())  # Zoë, Siân, Ó Briain
    rows = _rows(data)
    assert all(len(row) == 7 for row in rows)
    assert any("; " in row[6] for row in rows)  # several codes in one cell
    assert any(row[6] != row[6].upper() for row in rows)  # a code in lower case
    assert len(rows) - len({tuple(row) for row in rows}) == 1  # one exact duplicate
    per_user_practice: defaultdict[tuple[str, str], int] = defaultdict(int)
    for row in {tuple(row) for row in rows}:
        per_user_practice[row[0], row[3]] += 1
    assert any(count > 1 for count in per_user_practice.values())  # one row per code


def test_every_row_is_well_formed(fleet: Fleet) -> None:
    rows = _rows(users_report_csv(fleet))
    for user_id, surname, forename, org, name, role, cell in rows:
        assert re.fullmatch(r"[1-9]\d{11}", user_id)
        assert surname
        assert forename
        assert org in fleet.practices
        assert name == fleet.practices[org].name.upper()
        assert re.fullmatch(r"R\d{4}", role)
        assert all(re.fullmatch(r"B\d{4}", code) for code in _codes(cell))
    names = {(row[0], row[1], row[2]) for row in rows}
    assert len(names) == len({row[0] for row in rows})  # one name per user ID


def test_the_mix_of_users_is_realistic(fleet: Fleet) -> None:
    rows = _rows(users_report_csv(fleet))
    open_practices = {p.code for p in fleet.practices.values() if p.status == "A"}
    assert {row[3] for row in rows} == open_practices
    staff: defaultdict[str, set[str]] = defaultdict(set)
    granted: defaultdict[str, set[str]] = defaultdict(set)
    places: defaultdict[str, set[str]] = defaultdict(set)
    for row in rows:
        staff[row[3]].add(row[0])
        places[row[0]].add(row[3])
        if _codes(row[6]) & set(GRANTING_CODES):
            granted[row[3]].add(row[0])
    assert all(2 <= len(users) <= 12 for users in staff.values())
    share = len(granted) / len(open_practices)
    assert 0.85 <= share < 1.0  # about one practice in 15 where nobody can open the dashboard
    users_granted = len(set().union(*granted.values())) / len(places)
    assert 0.7 <= users_granted <= 0.9
    assert any(not _codes(row[6]) for row in rows)  # some hold no codes at all
    shared = sum(len(practices) > 1 for practices in places.values()) / len(places)
    assert 0.05 <= shared <= 0.15
    assert max(len(practices) for practices in places.values()) <= 3


def test_a_started_fleet_writes_the_report_and_names_it_in_sim_json(
    tmp_path: Path, loopback_base: str
) -> None:
    options = RunOptions(
        fleet=FleetOptions(hosts=3, seed=5, rtt_ms=1, exec_ms=5, base_address=loopback_base),
        out_dir=tmp_path / "fleet",
        winrm_port=0,
        winrm_https_port=None,
        ssh_port=None,
    )
    with FleetThread(options) as thread:
        running = thread.running
        manifest = json.loads(running.files.manifest.read_text())
        path = Path(manifest["users_report"])
        assert path == (tmp_path / "fleet" / "users.csv").resolve()
        assert path.read_bytes() == users_report_csv(running.fleet)
        assert manifest["epraccur"] == str((tmp_path / "fleet" / "epraccur.csv").resolve())
