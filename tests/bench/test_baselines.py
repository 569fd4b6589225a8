"""The baselines' pure parts: targets, inventories they are given, and how results are read."""

from __future__ import annotations

import csv
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import asyncssh
import pytest

from bench.baselines import ansible_psrp, cmscan_sweep
from bench.baselines.common import Host, Outputs, Targets, describe_failure
from bench.baselines.paramiko_pool import known_hosts
from collectors.probe import parse_stdin_invocation, probe_script

HEADER = "hostname,address,port,transport,practice_code,pcn_code,ccg_code,icb_code,site,credential_profile,tags\n"  # noqa: E501


def _targets(tmp_path: Path) -> Targets:
    password = tmp_path / "password"
    password.write_text("s3cret-pass\n")
    return Targets(
        username="cmscan-scan",
        password_file=password,
        patterns=("NHS *", "*IDEMIA*"),
        hosts=(Host("a81001-ws001", "127.30.0.1", 5985), Host("a81001-ws002", "127.30.0.2", 5985)),
    )


def test_targets_round_trip_without_the_password(tmp_path: Path) -> None:
    targets = _targets(tmp_path)
    text = json.dumps(targets.to_json())
    assert "s3cret" not in text
    (tmp_path / "targets.json").write_text(text)
    again = Targets.load(tmp_path / "targets.json")
    assert again == targets
    assert again.password == "s3cret-pass"


def test_every_baseline_sends_the_same_probe_with_the_same_patterns(tmp_path: Path) -> None:
    invocation = parse_stdin_invocation(_targets(tmp_path).probe_line)
    assert invocation == (probe_script(), ["NHS *", "*IDEMIA*"])


def test_outputs_round_trip(tmp_path: Path) -> None:
    outputs = Outputs({"a": "{}"}, {"b": "unreachable: refused"}, {"forks": 50})
    outputs.write(tmp_path / "out.json")
    assert Outputs.read(tmp_path / "out.json") == outputs


def test_failures_are_told_apart() -> None:
    refused = ConnectionError("boom")
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert describe_failure(refused).startswith("unreachable: ConnectionError")
    assert describe_failure(TimeoutError("slow")).startswith("unreachable: TimeoutError")
    assert describe_failure(RuntimeError("exit 1: bad")).startswith("error: RuntimeError")
    assert describe_failure(KeyError("x"), unreachable=(KeyError,)).startswith("unreachable")


def _inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.csv"
    path.write_text(
        HEADER
        + 'a81001-ws001,127.30.0.1,5985,winrm,A81001,U12345,00K,QHM,"1 High St, Leeds",default,x\n'
        + 'a81001-ws002,127.30.0.2,5985,winrm,A81001,U12345,00K,QHM,"1 High St, Leeds",default,x\n'
    )
    return path


def test_the_ssh_inventory_keeps_the_hosts_and_points_at_ssh(tmp_path: Path) -> None:
    manifest = {
        "hosts": [
            {"hostname": "a81001-ws001", "ssh_port": 2222},
            {"hostname": "a81001-ws002", "ssh_port": 2223},
        ]
    }
    out = cmscan_sweep.ssh_inventory(_inventory(tmp_path), manifest, tmp_path / "ssh.csv")
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [(r["hostname"], r["transport"], r["port"]) for r in rows] == [
        ("a81001-ws001", "ssh", "2222"),
        ("a81001-ws002", "ssh", "2223"),
    ]
    assert rows[0]["site"] == "1 High St, Leeds"


def test_a_subset_inventory_keeps_only_the_named_hosts(tmp_path: Path) -> None:
    out = cmscan_sweep.subset_inventory(_inventory(tmp_path), {"a81001-ws002"}, tmp_path / "s.csv")
    assert [r["hostname"] for r in csv.DictReader(out.read_text().splitlines())] == ["a81001-ws002"]
    assert out.read_text().startswith(HEADER)


def test_the_ansible_inventory_uses_psrp_with_ntlm_and_encryption(tmp_path: Path) -> None:
    text = ansible_psrp.inventory(_targets(tmp_path), "s3cret-pass")
    lines = text.splitlines()
    assert lines[1] == "a81001-ws001 ansible_host=127.30.0.1 ansible_port=5985"
    for setting in (
        "ansible_connection=psrp",
        "ansible_psrp_protocol=http",
        "ansible_psrp_auth=ntlm",
        "ansible_psrp_message_encryption=always",
    ):
        assert setting in lines


def test_the_ansible_command_runs_raw_with_its_forks(tmp_path: Path) -> None:
    argv = ansible_psrp.command(Path("ansible"), tmp_path / "i.ini", tmp_path / "tree", "x\n", 50)
    assert argv[argv.index("-m") + 1] == "raw"
    assert argv[argv.index("-a") + 1] == "x"
    assert argv[argv.index("-f") + 1] == "50"


def test_ansible_results_are_read_from_its_tree(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a81001-ws001").write_text(json.dumps({"changed": True, "rc": 0, "stdout": "{}"}))
    (tree / "a81001-ws002").write_text(json.dumps({"unreachable": True, "msg": "refused"}))
    outputs = ansible_psrp.read_tree(tree, _targets(tmp_path))
    assert outputs.outputs == {"a81001-ws001": "{}"}
    assert outputs.failures == {"a81001-ws002": "unreachable: refused"}
    (tree / "a81001-ws002").write_text(json.dumps({"failed": True, "rc": 1, "msg": "non-zero"}))
    (tree / "a81001-ws001").unlink()
    outputs = ansible_psrp.read_tree(tree, _targets(tmp_path))
    assert outputs.failures == {
        "a81001-ws001": "error: Ansible wrote no result",
        "a81001-ws002": "error: rc=1 non-zero",
    }


@pytest.mark.parametrize("port", [2222, 22])
def test_known_hosts_are_indexed_by_every_name(tmp_path: Path, port: int) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    public = key.export_public_key("openssh").decode().split()
    names = ["host", "127.30.0.1"] if port == 22 else ["[host]:2222", "[127.30.0.1]:2222"]
    path = tmp_path / "known_hosts"
    path.write_text(f"{','.join(names)} {public[0]} {public[1]}\n\n# a comment\n")
    index = known_hosts(path)
    assert set(index) == set(names)
    assert index[names[1]]["ssh-ed25519"].get_base64() == public[1]


def _database(tmp_path: Path) -> Path:
    """The columns of cmscan's scan, host and host_state tables that the harness reads."""
    path = tmp_path / "cmscan.db"
    with closing(sqlite3.connect(path)) as db:
        db.executescript(
            "CREATE TABLE host (id INTEGER PRIMARY KEY, hostname TEXT);"
            "CREATE TABLE host_state (host_id INTEGER, facts TEXT);"
            "CREATE TABLE scan (host_id INTEGER, outcome TEXT, facts TEXT,"
            " started_at TEXT, finished_at TEXT);"
            "INSERT INTO host VALUES (1, 'pc1'), (2, 'pc2'), (3, 'pc3');"
            "INSERT INTO host_state VALUES (1, '{\"latest\": 1}'), (2, '{\"latest\": 2}'),"
            " (3, NULL);"
            "INSERT INTO scan VALUES"
            " (1, 'ok', '{\"own\": 1}', '2026-01-01 10:00:00', '2026-01-01 10:00:02'),"
            " (2, 'ok', 'null', '2026-01-01 10:00:01', '2026-01-01 10:00:05'),"
            " (3, 'unreachable', 'null', '2026-01-01 10:00:01', '2026-01-01 10:00:01.5');"
        )
    return path


def test_stored_facts_come_from_the_scan_or_else_the_hosts_latest(tmp_path: Path) -> None:
    database = _database(tmp_path)
    assert cmscan_sweep.stored_scans(database) == {"ok": 2, "unreachable": 1}
    assert cmscan_sweep.stored_facts(database) == {"pc1": '{"own": 1}', "pc2": '{"latest": 2}'}


def test_probe_times_come_from_the_stored_scans(tmp_path: Path) -> None:
    times = cmscan_sweep.probe_times(_database(tmp_path))
    assert times == {"probe_s_ok_mean": 3.0, "probe_s_sum": 6.5, "span_s": 5.0}
