"""The whole runner with WinRM and SSH: every host probed by cmscan's collectors (pypsrp and
asyncssh), each outcome and verdict checked against sim.json, and changes seen over the wire."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from pypsrp.client import Client

from collectors import REGISTRY, CollectorOptions
from collectors.base import Outcome, ScanResult, Target, Timeouts
from collectors.credentials import Credentials, Secret
from collectors.facts import parse_probe_output
from collectors.probe import probe_script
from collectors.ssh import SSHConfig
from collectors.winrm import WinRMConfig
from policy.evaluate import evaluate
from policy.loader import default_policy
from simulator.profiles import PROFILES, WATCHED_PATTERNS, transition
from tests.fleet import StartFleet

# Short enough that black holes do not slow the suite, long enough for a busy machine.
TIMEOUTS = Timeouts(connect=3, operation=8, total=10)


async def _probe_all(manifest: dict[str, Any]) -> list[tuple[dict[str, Any], ScanResult]]:
    options = CollectorOptions(
        winrm=WinRMConfig(ca_file=Path(manifest["ca_file"])),
        ssh=SSHConfig(known_hosts=Path(manifest["ssh_known_hosts"])),
    )
    collectors = {name: make(options) for name, make in REGISTRY.items()}
    credentials = Credentials(
        profile="default",
        username=manifest["username"],
        auth="ntlm",
        password=Secret(manifest["password"]),
        ssh_key_file=Path(manifest["ssh_client_key"]),
    )

    async def one(entry: dict[str, Any]) -> tuple[dict[str, Any], ScanResult]:
        transport = entry["transport"]
        port = {"winrm": "winrm_port", "winrm-https": "winrm_https_port", "ssh": "ssh_port"}
        target = Target(
            hostname=entry["hostname"],
            port=entry[port[transport]],
            transport=transport,
            address=entry["address"],
            patterns=WATCHED_PATTERNS,
        )
        return entry, await collectors[transport].collect(target, credentials, TIMEOUTS)

    try:
        return await asyncio.gather(*(one(e) for e in manifest["hosts"]))
    finally:
        for collector in collectors.values():
            await collector.aclose()


async def test_every_host_scans_as_sim_json_declares(simulated_fleet: StartFleet) -> None:
    fleet = simulated_fleet(36, seed=3, faults=0.35, transport="mixed")
    manifest = fleet.manifest()
    assert {h["transport"] for h in manifest["hosts"]} == {"winrm", "winrm-https", "ssh"}
    assert len({h["fault"] for h in manifest["hosts"]}) == 10  # every fault, and none
    policy = default_policy()
    mismatches = []
    for entry, result in await _probe_all(manifest):
        seen: tuple[object, ...] = (result.outcome.value,)
        wanted: tuple[object, ...] = (entry["expected_outcome"],)
        if result.outcome is Outcome.OK:
            assert result.facts is not None
            verdict = evaluate(policy, result.facts)
            seen += (
                verdict.status,
                sorted(verdict.failing_ids),
                sorted(f.rule_id for f in verdict.advisories),
            )
            wanted += (
                entry["expected_status"],
                sorted(entry["expected_failing_rules"]),
                sorted(entry["expected_advisories"]),
            )
        if seen != wanted:
            mismatches.append(
                (entry["hostname"], entry["transport"], entry["fault"], seen, wanted, result.reason)
            )
    assert mismatches == []


def test_pypsrp_sees_the_hosts_facts_and_changes(simulated_fleet: StartFleet) -> None:
    fleet = simulated_fleet(4, seed=8, mix="all-bad", ssh=False)
    manifest = fleet.manifest()
    entry = next(
        h
        for h in manifest["hosts"]
        if transition(PROFILES[h["profile"]], "install-cm-4.1")
        not in (None, PROFILES[h["profile"]])
    )
    host = fleet.fleet.host(entry["hostname"])
    for https in (False, True):
        client = Client(
            entry["address"],
            port=entry["winrm_https_port" if https else "winrm_port"],
            ssl=https,
            username=manifest["username"],
            password=manifest["password"],
            auth="ntlm",
            cert_validation=manifest["ca_file"] if https else False,
            encryption="auto" if https else "always",
            reconnection_retries=0,
        )
        output, streams, had_errors = client.execute_ps(probe_script())
        assert not had_errors, streams.error
        # Without the Patterns parameter bound the probe reports every product.
        facts = parse_probe_output(output)
        assert facts.products == host.facts().products
        hostname, _, _ = client.execute_ps("hostname")
        assert hostname == entry["hostname"].upper()
        _, streams, had_errors = client.execute_ps("Get-Nothing")
        assert had_errors
        assert "is not recognized as the name of a cmdlet" in str(streams.error[0])
    change = fleet.apply("install-cm-4.1", hostnames=[entry["hostname"]])
    assert [c["hostname"] for c in change.changed] == [entry["hostname"]]
    client = Client(
        entry["address"],
        port=entry["winrm_port"],
        ssl=False,
        username=manifest["username"],
        password=manifest["password"],
        auth="ntlm",
        reconnection_retries=0,
    )
    output, _, _ = client.execute_ps(probe_script())
    versions = [
        p.version
        for p in parse_probe_output(output).products
        if p.name == "NHS Credential Management"
    ]
    assert versions == ["4.1.0.0"]


def test_power_off_refuses_winrm_and_power_on_restores_it(simulated_fleet: StartFleet) -> None:
    fleet = simulated_fleet(2, seed=4, mix="all-good")
    entry = fleet.manifest()["hosts"][0]
    ports = (entry["winrm_port"], entry["winrm_https_port"], entry["ssh_port"])
    fleet.power_off(hostnames=[entry["hostname"]])
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((entry["address"], port), timeout=2).close()
    fleet.power_on(hostnames=[entry["hostname"]])
    after = fleet.manifest()["hosts"][0]
    assert (after["winrm_port"], after["winrm_https_port"], after["ssh_port"]) == ports
    assert after["fault"] is None
    client = Client(
        entry["address"],
        port=entry["winrm_port"],
        ssl=False,
        username=fleet.manifest()["username"],
        password=fleet.manifest()["password"],
        auth="ntlm",
        reconnection_retries=0,
    )
    output, _, had_errors = client.execute_ps("hostname")
    assert not had_errors
    assert output == entry["hostname"].upper()
