"""A whole fleet in a background thread (SSH listeners): files, oracle, admin changes, admin API."""

from __future__ import annotations

import asyncio
import json
import math
import resource
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pytest

from collectors.facts import Facts, parse_probe_output
from collectors.probe import SSH_COMMAND, stdin_invocation
from simulator.admin import FleetAdmin, Selection
from simulator.behaviour import Fault
from simulator.file_limits import descriptors_needed, raise_file_limit
from simulator.fleet import FleetOptions
from simulator.fleet_thread import FleetThread
from simulator.profiles import WATCHED_PATTERNS, transition
from simulator.run_options import FleetStartError, RunOptions

PROBE = "<# cmscan-probe/1 #>\nparam([string[]]$Patterns)\n"


@pytest.fixture
def fleet(tmp_path: Path, loopback_base: str) -> Iterator[FleetThread]:
    options = RunOptions(
        fleet=FleetOptions(
            hosts=30, seed=21, transport="ssh", rtt_ms=1, exec_ms=5, base_address=loopback_base
        ),
        out_dir=tmp_path / "fleet",
        winrm_port=None,
        winrm_https_port=None,
        ssh_port=0,
    )
    with FleetThread(options) as running:
        yield running


def _probe(entry: dict[str, Any], manifest: dict[str, Any]) -> Facts | Exception:
    async def run() -> Facts:
        async with asyncssh.connect(
            entry["address"],
            entry["ssh_port"],
            username=manifest["username"],
            client_keys=[manifest["ssh_client_key"]],
            known_hosts=manifest["ssh_known_hosts"],
            agent_path=None,
            connect_timeout=3,
        ) as conn:
            result = await conn.run(
                SSH_COMMAND,
                input=stdin_invocation(PROBE, WATCHED_PATTERNS),
                timeout=5,
                check=True,
            )
            return parse_probe_output(str(result.stdout))

    try:
        return asyncio.run(run())
    except Exception as exc:  # the test looks at which one
        return exc


def test_files_and_manifest(fleet: FleetThread) -> None:
    root = fleet.running.files.root
    manifest = fleet.manifest()
    assert stat.S_IMODE((root / "sim.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "password").stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(manifest["ssh_client_key"]).stat().st_mode) == 0o600
    assert (root / "password").read_text().strip() == manifest["password"]
    for key in (
        "seed",
        "username",
        "password",
        "ssh_client_key",
        "ssh_known_hosts",
        "admin_url",
        "admin_token",
    ):
        assert manifest[key], key
    assert manifest["ca_file"] is None  # no WinRM listeners in this fleet
    assert len(manifest["hosts"]) == 30
    known = Path(manifest["ssh_known_hosts"]).read_text().splitlines()
    assert len(known) == 30
    for entry, line in zip(manifest["hosts"], known, strict=True):
        assert line.startswith(f"[{entry['hostname']}]:{entry['ssh_port']},[{entry['address']}]:")
        assert entry["winrm_port"] is None
    assert (root / "inventory.csv").read_text().count("\n") == 31


def test_every_host_answers_as_declared(fleet: FleetThread) -> None:
    manifest = fleet.manifest()
    for entry in manifest["hosts"]:
        facts = _probe(entry, manifest)
        assert isinstance(facts, Facts), (entry["hostname"], facts)
        assert fleet.fleet.host(entry["hostname"]).profile.name == entry["profile"]


def test_changes_follow_into_answers_and_the_manifest(fleet: FleetThread) -> None:
    manifest = fleet.manifest()
    missing = [h for h in manifest["hosts"] if h["profile"] == "cm-missing"]
    assert missing
    ccg = missing[0]["ccg"]
    change = fleet.apply("install-cm-4.1", ccg=ccg, fraction=1.0)
    changed = {c["hostname"]: c for c in change.changed}
    assert missing[0]["hostname"] in changed
    after = {h["hostname"]: h for h in fleet.manifest()["hosts"]}
    target = after[missing[0]["hostname"]]
    assert target["profile"] == "cm-4.1.0-pending-reboot"
    assert target["expected_status"] == "compliant"
    assert target["expected_advisories"] == ["no-pending-reboot"]
    facts = _probe(target, manifest)
    assert isinstance(facts, Facts)
    assert [p.version for p in facts.products if p.name == "NHS Credential Management"] == [
        "4.1.0.0"
    ]
    assert facts.pending_reboot.pending
    # Everything else in that CCG is reported as left alone, with the reason.
    assert all(u["reason"] for u in change.unchanged)
    fleet.apply("reboot", hostnames=[target["hostname"]])
    assert {h["hostname"]: h for h in fleet.manifest()["hosts"]}[target["hostname"]][
        "profile"
    ] == "compliant-cm-4.1.0"


def test_fraction_is_seeded_and_counts_eligible_hosts(fleet: FleetThread) -> None:
    def eligible(host: Any) -> bool:
        target = transition(host.profile, "install-cm-4.1")
        return target is not None and target is not host.profile

    candidates = [h.hostname for h in fleet.fleet if eligible(h)]
    assert len(candidates) >= 3
    admin = fleet.running.admin
    selection = Selection(fraction=0.5, seed=7)
    first = fleet.call(lambda: _select(admin, selection, eligible))
    assert first == fleet.call(lambda: _select(admin, selection, eligible))
    assert len(first) == math.ceil(len(candidates) / 2)
    change = fleet.apply("install-cm-4.1", fraction=0.5, seed=7)
    assert sorted(c["hostname"] for c in change.changed) == first
    with pytest.raises(ValueError, match="no such host"):
        fleet.apply("reboot", hostnames=["nowhere"])
    with pytest.raises(ValueError, match="no CCG"):
        fleet.apply("reboot", ccg="ZZZ")


async def _select(admin: FleetAdmin, selection: Selection, eligible: Any) -> list[str]:
    return [h.hostname for h in admin.select(selection, eligible)]


def test_power_and_faults(fleet: FleetThread) -> None:
    manifest = fleet.manifest()
    entry = manifest["hosts"][0]
    fleet.power_off(hostnames=[entry["hostname"]])
    off = fleet.manifest()["hosts"][0]
    assert (off["fault"], off["expected_outcome"], off["expected_status"]) == (
        "powered-off",
        "unreachable",
        "unreachable",
    )
    assert isinstance(_probe(entry, manifest), ConnectionRefusedError)
    # Software cannot be installed on a machine that is off.
    report = fleet.apply("reboot", hostnames=[entry["hostname"]])
    assert report.unchanged == [{"hostname": entry["hostname"], "reason": "powered off"}]
    fleet.power_on(hostnames=[entry["hostname"]])
    assert isinstance(_probe(entry, manifest), Facts)
    fleet.set_fault(Fault.BAD_CREDENTIALS, hostnames=[entry["hostname"]])
    assert fleet.manifest()["hosts"][0]["expected_outcome"] == "auth_failed"
    assert isinstance(_probe(entry, manifest), asyncssh.PermissionDenied)
    fleet.set_fault(None, hostnames=[entry["hostname"]])
    assert fleet.manifest()["hosts"][0]["fault"] is None


def test_admin_http_api(fleet: FleetThread) -> None:
    manifest = fleet.manifest()
    url, token = manifest["admin_url"], manifest["admin_token"]
    assert url.startswith("http://127.0.0.1:")
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/v1/hosts").status_code == 401
        denied = client.get("/v1/hosts", headers={"Authorization": "Bearer nope"})
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"] == "Bearer"
        auth = {"Authorization": f"Bearer {token}"}
        hosts = client.get("/v1/hosts", headers=auth).json()
        assert [h["hostname"] for h in hosts] == [h["hostname"] for h in manifest["hosts"]]
        assert "install-cm-4.1" in client.get("/v1/actions", headers=auth).json()
        first = hosts[0]["hostname"]
        response = client.post("/v1/power/off", headers=auth, json={"hostnames": [first]})
        assert response.status_code == 200, response.text
        assert response.json()["changed"][0]["hostname"] == first
        assert (
            json.loads(fleet.running.files.manifest.read_text())["hosts"][0]["fault"]
            == "powered-off"
        )
        response = client.post(
            "/v1/faults", headers=auth, json={"hostnames": [first], "fault": "reset"}
        )
        assert response.json()["changed"][0]["after"] == "reset"
        response = client.post(
            "/v1/actions/install-cm-4.1",
            headers=auth,
            json={"ccg": hosts[0]["ccg"], "fraction": 0.3},
        )
        assert response.status_code == 200
        assert client.post("/v1/actions/format-c", headers=auth, json={}).status_code == 404
        bad = client.post("/v1/actions/reboot", headers=auth, json={"ccg": "ZZZ"})
        assert bad.status_code == 400
        assert "no CCG" in bad.json()["detail"]
        assert (
            client.post("/v1/actions/reboot", headers=auth, json={"fraction": 2}).status_code == 422
        )
        assert (
            client.post("/v1/faults", headers=auth, json={"fault": "gremlins"}).status_code == 422
        )


def test_listener_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(FleetStartError, match="transport winrm needs its listener"):
        RunOptions(fleet=FleetOptions(hosts=1), out_dir=tmp_path, winrm_port=None)
    with pytest.raises(FleetStartError, match="not a port number"):
        RunOptions(fleet=FleetOptions(hosts=1), out_dir=tmp_path, ssh_port=70000)


def test_file_limit_is_raised_or_refused_clearly() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert raise_file_limit(min(soft, 64)) >= 64
    assert descriptors_needed(5000, 3) > 15000
    if hard != resource.RLIM_INFINITY:
        with pytest.raises(FleetStartError, match=r"hard limit is \d+: raise it"):
            raise_file_limit(hard + 1)
