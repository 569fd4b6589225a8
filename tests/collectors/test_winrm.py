"""The WinRM collector against the simulator's WinRM endpoint: real HTTP, NTLM, TLS and PSRP."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collectors.base import Outcome, ScanResult, Target, Timeouts
from collectors.credentials import Credentials, Secret
from collectors.winrm import NAME, NAME_HTTPS, WinRMCollector, WinRMConfig
from simulator.behaviour import Fault
from simulator.tls import FleetCA
from simulator.winrm import Account, WinRMEndpoint, start_winrm
from tests.collectors.hosts import PROBE_FAILURE, WATCHED, FixtureHost

HOSTNAME = "gp-a81001-ws01.example.nhs.uk"
PASSWORD = "Spring-Meadow-2025!"
WRONG = "Autumn-Harbour-1999?"
SHORT = Timeouts(connect=1, operation=3, total=4)


@dataclass
class Site:
    """One simulated host with its WinRM listeners and the CA that signed its certificate."""

    host: FixtureHost
    endpoint: WinRMEndpoint
    ca: FleetCA

    def target(self, *, https: bool = False, hostname: str = HOSTNAME) -> Target:
        port = self.endpoint.https_port if https else self.endpoint.http_port
        assert port is not None
        return Target(
            hostname=hostname,
            port=port,
            transport=NAME_HTTPS if https else NAME,
            address=self.endpoint.address,
            patterns=WATCHED,
        )


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    # A random 127.N.x.y address keeps concurrent test runs from meeting each other.
    address = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    host = FixtureHost(name=HOSTNAME)
    ca = FleetCA.create(tmp_path)
    endpoint = await start_winrm(
        host,
        address=address,
        account=Account("NHS\\cmscan-collector", PASSWORD),
        http_port=0,
        https_port=0,
        ca=ca,
    )
    try:
        yield Site(host, endpoint, ca)
    finally:
        await endpoint.close()


def ntlm(password: str = PASSWORD, auth: str = "ntlm") -> Credentials:
    return Credentials(
        profile="practice",
        username="NHS\\cmscan-collector",
        auth=auth,  # type: ignore[arg-type]
        password=Secret(password),
    )


async def collect(
    config: WinRMConfig, target: Target, credentials: Credentials, timeouts: Timeouts = SHORT
) -> ScanResult:
    collector = WinRMCollector(config)
    try:
        return await collector.collect(target, credentials, timeouts)
    finally:
        await collector.aclose()


async def settle(endpoint: WinRMEndpoint) -> int:
    """Open shells once in-flight clean-up has had a moment to arrive."""
    for _ in range(50):
        if endpoint.open_shells == 0:
            break
        await asyncio.sleep(0.05)
    return endpoint.open_shells


async def test_http_with_ntlm_message_encryption(site: Site) -> None:
    result = await collect(WinRMConfig(), site.target(), ntlm())
    assert result.outcome is Outcome.OK, result.reason
    assert result.transport == "winrm"
    assert result.facts is not None
    assert result.facts.probe.patterns == WATCHED
    assert [p.name for p in result.facts.products] == [
        "NHS Credential Management",
        "Oberthur Technologies Authentic Web Pack",
    ]
    assert site.host.runs == 1
    assert await settle(site.endpoint) == 0, "the runspace pool's shell was left open"


async def test_negotiate_is_the_default_and_works_too(site: Site) -> None:
    result = await collect(WinRMConfig(), site.target(), ntlm(auth="negotiate"))
    assert result.outcome is Outcome.OK, result.reason


async def test_patterns_reach_the_probe(site: Site) -> None:
    target = site.target()
    narrowed = Target(target.hostname, target.port, target.transport, target.address, ("*IDEMIA*",))
    result = await collect(WinRMConfig(), narrowed, ntlm())
    assert result.facts is not None, result.reason
    assert result.facts.products == ()
    assert result.facts.probe.patterns == ("*IDEMIA*",)


async def test_https_verifies_the_certificate_against_the_fleet_ca(site: Site) -> None:
    config = WinRMConfig(https=True, ca_file=site.ca.ca_file)
    result = await collect(config, site.target(https=True), ntlm())
    assert result.outcome is Outcome.OK, result.reason
    assert result.transport == "winrm-https"
    assert await settle(site.endpoint) == 0


async def test_https_refuses_a_certificate_from_another_ca(site: Site, tmp_path: Path) -> None:
    stranger = FleetCA.create(tmp_path / "other")
    config = WinRMConfig(https=True, ca_file=stranger.ca_file)
    result = await collect(config, site.target(https=True), ntlm())
    assert result.outcome is Outcome.PROTOCOL_ERROR
    assert "certificate verify failed" in result.reason
    assert site.host.runs == 0


async def test_https_checks_the_inventory_name_not_the_dialled_address(site: Site) -> None:
    # The certificate names the host and its address; dialling the address for another
    # name must still fail, or a wrong inventory entry would probe the wrong machine.
    config = WinRMConfig(https=True, ca_file=site.ca.ca_file)
    result = await collect(config, site.target(https=True, hostname="ws99.example.nhs.uk"), ntlm())
    assert result.outcome is Outcome.PROTOCOL_ERROR
    assert "certificate verify failed" in result.reason


async def test_https_without_verification_only_when_configured_and_loudly(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    config = WinRMConfig(https=True, verify_tls=False)
    with caplog.at_level(logging.WARNING, logger="collectors.winrm"):
        result = await collect(config, site.target(https=True), ntlm())
    assert result.outcome is Outcome.OK, result.reason
    assert "WITHOUT certificate verification" in caplog.text


async def test_system_trust_store_refuses_the_fleet_ca(site: Site) -> None:
    result = await collect(WinRMConfig(https=True), site.target(https=True), ntlm())
    assert result.outcome is Outcome.PROTOCOL_ERROR


@pytest.mark.parametrize(
    ("fault", "outcome", "reason"),
    [
        (Fault.BLACK_HOLE, Outcome.TIMEOUT, "accepted the connection but never answered"),
        (Fault.BAD_CREDENTIALS, Outcome.AUTH_FAILED, "refused the credentials of profile"),
        (Fault.QUOTA_EXCEEDED, Outcome.PROTOCOL_ERROR, "WS-Management fault"),
        (Fault.RESET, Outcome.PROTOCOL_ERROR, ""),
        (Fault.MALFORMED_OUTPUT, Outcome.PROBE_ERROR, "malformed JSON"),
        (Fault.OVERSIZED_OUTPUT, Outcome.PROBE_ERROR, "byte limit"),
        (Fault.PROBE_EXCEPTION, Outcome.PROBE_ERROR, PROBE_FAILURE),
        (Fault.SLOW, Outcome.OK, ""),
    ],
)
@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
async def test_each_fault_maps_to_its_outcome_within_the_deadline(
    site: Site, fault: Fault, outcome: Outcome, reason: str, https: bool
) -> None:
    site.host.fault_mode = fault
    site.host.delay = 0.05
    config = WinRMConfig(https=https, ca_file=site.ca.ca_file)
    started = time.monotonic()
    result = await collect(config, site.target(https=https), ntlm())
    elapsed = time.monotonic() - started
    assert result.outcome is outcome, result.reason
    assert reason in result.reason
    assert len(result.reason) <= 200
    assert elapsed < SHORT.total + 0.5
    if fault not in (Fault.BLACK_HOLE, Fault.RESET):
        # (A host that never answers, or breaks every reply, cannot be asked to close a
        # shell; the shell's idle timeout ends it there.)
        assert await settle(site.endpoint) == 0, "a shell was left open on the host"


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
async def test_a_powered_off_host_is_unreachable(site: Site, https: bool) -> None:
    # Nothing listens at all: the connection is refused.
    target = site.target(https=https)
    await site.endpoint.close()
    result = await collect(WinRMConfig(https=https, ca_file=site.ca.ca_file), target, ntlm())
    assert result.outcome is Outcome.UNREACHABLE
    assert "Connection refused" in result.reason


async def test_a_listener_that_resets_every_connection_is_unreachable(site: Site) -> None:
    # The simulator's powered-off host accepts and resets at once. Over HTTP only: with TLS
    # CPython's ssl module can leave that socket unclosed, which these tests treat as an error.
    site.host.fault_mode = Fault.POWERED_OFF
    result = await collect(WinRMConfig(), site.target(), ntlm())
    assert result.outcome is Outcome.UNREACHABLE
    assert "cannot connect" in result.reason


async def test_a_probe_longer_than_the_operation_timeout(site: Site) -> None:
    site.host.script_s = 2.5
    timeouts = Timeouts(connect=1, operation=0.5, total=4)
    result = await collect(WinRMConfig(), site.target(), ntlm(), timeouts)
    assert result.outcome is Outcome.TIMEOUT
    assert "did not finish within 0.5s" in result.reason
    assert await settle(site.endpoint) == 0


async def test_a_hung_host_does_not_hold_its_worker_thread(site: Site) -> None:
    # One worker thread: the second probe can only start once the first one's thread is free.
    collector = WinRMCollector(WinRMConfig(max_threads=1))
    site.host.fault_mode = Fault.BLACK_HOLE
    hung = await collector.collect(site.target(), ntlm(), Timeouts(connect=1, operation=1, total=1))
    assert hung.outcome is Outcome.TIMEOUT
    site.host.fault_mode = None
    started = time.monotonic()
    healthy = await collector.collect(site.target(), ntlm(), SHORT)
    await collector.aclose()
    assert healthy.outcome is Outcome.OK, healthy.reason
    assert time.monotonic() - started < SHORT.total


async def test_concurrent_probes_share_a_bounded_pool(site: Site) -> None:
    collector = WinRMCollector(WinRMConfig(max_threads=2))
    results = await asyncio.gather(
        *(collector.collect(site.target(), ntlm(), SHORT) for _ in range(5))
    )
    await collector.aclose()
    assert [r.outcome for r in results] == [Outcome.OK] * 5
    assert await settle(site.endpoint) == 0


async def test_cancellation_is_never_swallowed(site: Site) -> None:
    site.host.fault_mode = Fault.BLACK_HOLE
    collector = WinRMCollector()
    task = asyncio.create_task(collector.collect(site.target(), ntlm(), SHORT))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await collector.aclose()


@pytest.mark.parametrize(
    ("auth", "https", "reason"),
    [
        ("basic", False, "basic authentication is only allowed over winrm-https"),
        ("certificate", False, "certificate authentication needs winrm-https"),
        ("credssp", False, "requests-credssp"),
    ],
)
async def test_unsafe_or_unavailable_authentication_is_refused(
    site: Site, auth: str, https: bool, reason: str
) -> None:
    result = await collect(WinRMConfig(https=https), site.target(https=https), ntlm(auth=auth))
    assert result.outcome is Outcome.PROTOCOL_ERROR
    assert reason in result.reason
    assert site.host.runs == 0


async def test_a_failing_winrm_probe_leaks_no_secret(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # pypsrp, spnego and urllib3 debug output, unscrubbed
    site.host.fault_mode = Fault.BAD_CREDENTIALS
    refused = await collect(WinRMConfig(), site.target(), ntlm(WRONG))
    site.host.fault_mode = None
    accepted = await collect(WinRMConfig(), site.target(), ntlm(PASSWORD))
    assert (refused.outcome, accepted.outcome) == (Outcome.AUTH_FAILED, Outcome.OK)
    assert caplog.records
    evidence = [caplog.text, repr(refused), repr(accepted), refused.reason]
    evidence += [str(record.args) for record in caplog.records]
    for text in evidence:
        assert WRONG not in text
        assert PASSWORD not in text
