"""The files a fleet writes: inventory.csv, epraccur.csv, cmscan.toml, as cmscan reads them."""

from __future__ import annotations

import csv
import io
import stat
from pathlib import Path

from config.settings import load_settings
from inventory.load import load_inventory, read_epraccur
from simulator import files
from simulator.fleet import Fleet, FleetOptions, build_fleet


def _fleet() -> Fleet:
    fleet = build_fleet(FleetOptions(hosts=120, seed=8, transport="mixed"))
    for index, host in enumerate(fleet):
        host.winrm_port, host.winrm_https_port, host.ssh_port = 5985, 5986, 20000 + index
    return fleet


def test_inventory_has_the_documented_shape_and_imports_cleanly(tmp_path: Path) -> None:
    fleet = _fleet()
    text = files.inventory_csv(fleet)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(files.INVENTORY_HEADER)
    assert text.splitlines()[0] == (
        "hostname,address,port,transport,practice_code,pcn_code,ccg_code,icb_code,site,"
        "credential_profile,tags"
    )
    assert len(rows) == 121
    ports = {"winrm": "5985", "winrm-https": "5986"}
    for row, host in zip(rows[1:], fleet, strict=True):
        assert row[0] == host.hostname
        assert row[3] == host.transport
        assert row[2] == ports.get(host.transport, str(host.ssh_port))
    assert {r[3] for r in rows[1:]} == {"winrm", "winrm-https", "ssh"}

    (tmp_path / "inventory.csv").write_text(text)
    (tmp_path / "epraccur.csv").write_text(files.epraccur_csv(fleet))
    ods = read_epraccur(tmp_path / "epraccur.csv")
    inventory = load_inventory(tmp_path / "inventory.csv", fmt="csv", ods=ods)
    assert [p for p in inventory.problems if p.severity == "error"] == []
    assert len(inventory.hosts) == 120
    by_name = {h.spec.hostname: h.spec for h in inventory.hosts}
    for host in fleet:
        spec = by_name[host.hostname]
        assert spec.address == host.address
        assert (spec.practice_code, spec.pcn_code, spec.ccg_code, spec.icb_code) == (
            host.practice.code,
            host.practice.pcn,
            host.practice.ccg,
            host.practice.icb,
        )
        assert "simulated" in spec.tags


def test_epraccur_is_in_the_ods_format(tmp_path: Path) -> None:
    fleet = _fleet()
    text = files.epraccur_csv(fleet)
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == len(fleet.practices)
    assert rows[0][0] == min(fleet.practices)  # no header row: the first row is a practice
    assert all(len(r) == 27 for r in rows)
    assert all(line.startswith('"') for line in text.splitlines())  # every field quoted
    for row in rows:
        practice = fleet.practices[row[0]]
        assert row[1] == practice.name.upper()
        assert row[2].startswith("Y")
        assert row[3] == practice.icb
        assert row[9] == practice.postcode
        assert len(row[10]) == 8
        assert row[10].isdigit()
        assert row[12] in ("A", "C")
        assert (row[12] == "C") == bool(row[11])
        assert row[13] == "B"
        assert row[14] == row[23] == practice.ccg
        assert row[21] == "0"
        assert row[25] == "4"
    assert sum(r[12] == "C" for r in rows) == 2
    (tmp_path / "epraccur.csv").write_text(text)
    ods = read_epraccur(tmp_path / "epraccur.csv")
    assert ods.problems == []
    assert {p.status for p in ods.practices.values()} == {"A", "C"}


def test_cmscan_toml_is_accepted(tmp_path: Path) -> None:
    paths = files.FleetFiles(tmp_path)
    for winrm, ssh in ((True, True), (True, False), (False, True)):
        paths.config.write_text(
            files.cmscan_toml(paths, username="cmscan-scan", winrm=winrm, ssh=ssh)
        )
        settings = load_settings(config_file=paths.config)
        assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'cmscan.db'}"
        profile = settings.credentials["default"]
        assert profile.username == "cmscan-scan"
        assert profile.auth == "ntlm"
        assert profile.password_file == tmp_path.resolve() / "password"
        assert (settings.winrm.ca_file == tmp_path.resolve() / "ca.pem") is winrm
        assert (settings.ssh.known_hosts == tmp_path.resolve() / "ssh" / "known_hosts") is ssh


def test_manifest_entries_carry_the_oracle() -> None:
    fleet = _fleet()
    document = files.manifest(fleet, {"username": "u"})
    assert document["seed"] == 8
    entry = document["hosts"][0]
    assert set(entry) >= {
        "hostname", "address", "winrm_port", "winrm_https_port", "ssh_port", "icb", "ccg",
        "pcn", "practice", "profile", "fault", "expected_outcome", "expected_status",
        "expected_failing_rules", "expected_advisories",
    }  # fmt: skip


def test_private_files_are_private(tmp_path: Path) -> None:
    files.write_atomically(tmp_path / "secret", "x", private=True)
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
    files.write_atomically(tmp_path / "secret", "y", private=True)
    assert (tmp_path / "secret").read_text() == "y"
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]  # no temporary left behind
