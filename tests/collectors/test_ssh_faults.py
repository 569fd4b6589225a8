"""The SSH collector against the simulator's SSH endpoint: password login and every fault."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from collectors.base import Outcome, Target, Timeouts
from collectors.credentials import Credentials, Secret
from collectors.ssh import SSHCollector, SSHConfig
from simulator.behaviour import Fault
from simulator.ssh import SSHAccount, SSHEndpoint, known_hosts_line, start_ssh
from tests.collectors.hosts import PROBE_FAILURE, WATCHED, FixtureHost

PASSWORD = "Winter2025!"
SHORT = Timeouts(connect=1, operation=2, total=3)


@pytest.fixture
def host() -> FixtureHost:
    return FixtureHost()


@pytest.fixture
async def endpoint(host: FixtureHost) -> AsyncIterator[SSHEndpoint]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    account = SSHAccount("cmscan-scan", PASSWORD)
    started = await start_ssh(host, address="127.0.0.1", port=0, account=account, host_key=key)
    started.key = key  # type: ignore[attr-defined]
    try:
        yield started
    finally:
        await started.close()


def collector_for(endpoint: SSHEndpoint, tmp_path: Path) -> SSHCollector:
    key: asyncssh.SSHKey = endpoint.key  # type: ignore[attr-defined]
    path = tmp_path / "known_hosts"
    path.write_text(known_hosts_line(key, ("ws01.example.nhs.uk",), endpoint.port))
    return SSHCollector(SSHConfig(known_hosts=path))


def target(endpoint: SSHEndpoint) -> Target:
    return Target(
        "ws01.example.nhs.uk", endpoint.port, "ssh", address="127.0.0.1", patterns=WATCHED
    )


def password(value: str = PASSWORD) -> Credentials:
    return Credentials(
        profile="practice", username="NHS\\cmscan-scan", auth="ntlm", password=Secret(value)
    )


async def set_fault(host: FixtureHost, endpoint: SSHEndpoint, fault: Fault | None) -> None:
    host.fault_mode = fault
    await endpoint.refresh()


async def test_password_login_gives_facts(endpoint: SSHEndpoint, tmp_path: Path) -> None:
    result = await collector_for(endpoint, tmp_path).collect(target(endpoint), password(), SHORT)
    assert result.outcome is Outcome.OK, result.reason
    assert result.facts is not None
    assert result.facts.probe.patterns == WATCHED


@pytest.mark.parametrize(
    ("fault", "outcome", "reason"),
    [
        (Fault.POWERED_OFF, Outcome.UNREACHABLE, "cannot connect"),
        (Fault.BLACK_HOLE, Outcome.TIMEOUT, "did not complete the SSH login"),
        (Fault.BAD_CREDENTIALS, Outcome.AUTH_FAILED, "refused the credentials of profile"),
        (Fault.QUOTA_EXCEEDED, Outcome.PROTOCOL_ERROR, "too many sessions"),
        (Fault.RESET, Outcome.PROTOCOL_ERROR, ""),
        (Fault.MALFORMED_OUTPUT, Outcome.PROBE_ERROR, "malformed JSON"),
        (Fault.OVERSIZED_OUTPUT, Outcome.PROBE_ERROR, "byte limit"),
        (Fault.PROBE_EXCEPTION, Outcome.PROBE_ERROR, PROBE_FAILURE),
        (Fault.SLOW, Outcome.OK, ""),
    ],
)
async def test_each_fault_maps_to_its_outcome_within_the_deadline(
    host: FixtureHost,
    endpoint: SSHEndpoint,
    tmp_path: Path,
    fault: Fault,
    outcome: Outcome,
    reason: str,
) -> None:
    host.delay = 0.05
    await set_fault(host, endpoint, fault)
    started = time.monotonic()
    result = await collector_for(endpoint, tmp_path).collect(target(endpoint), password(), SHORT)
    elapsed = time.monotonic() - started
    assert result.outcome is outcome, result.reason
    assert reason in result.reason
    assert elapsed < SHORT.total + 0.5
    assert len(result.reason) <= 200


async def test_cancellation_is_never_swallowed(
    host: FixtureHost, endpoint: SSHEndpoint, tmp_path: Path
) -> None:
    await set_fault(host, endpoint, Fault.BLACK_HOLE)
    collector = collector_for(endpoint, tmp_path)
    task = asyncio.create_task(collector.collect(target(endpoint), password(), SHORT))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_profile_without_a_username_is_refused_before_connecting(
    endpoint: SSHEndpoint, tmp_path: Path
) -> None:
    # Kerberos profiles may leave the username out for WinRM; an SSH login needs one.
    kerberos = Credentials(profile="domain", username=None, auth="kerberos")
    result = await collector_for(endpoint, tmp_path).collect(target(endpoint), kerberos, SHORT)
    assert result.outcome is Outcome.PROTOCOL_ERROR
    assert result.reason == "credential profile 'domain' has no username, which SSH needs"


def test_a_clixml_error_stream_is_reduced_to_its_first_error_line() -> None:
    from collectors.ssh import _failure_reason

    stderr = (
        b"#< CLIXML\r\n"
        b'<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        b'<Obj S="progress" RefId="0"><MS><PR N="Record"><AV>Preparing modules for first use.'
        b"</AV></PR></MS></Obj>"
        b'<S S="Error">Cannot invoke method. Method invocation is supported only on core types'
        b" in this language mode._x000D__x000A_</S>"
        b'<S S="Error">At line:1 char:1 &amp; more_x000D__x000A_</S></Objs>'
    )
    assert _failure_reason("empty output", stderr, 1) == (
        "probe failed (exit 1): Cannot invoke method. Method invocation is supported only on"
        " core types in this language mode."
    )
    progress_only = b'#< CLIXML\r\n<Objs><Obj S="progress"><AV>x</AV></Obj></Objs>'
    assert _failure_reason("empty output", progress_only, 0) == "empty output"
    assert _failure_reason("empty output", b"Plain error\r\n", 1) == (
        "probe failed (exit 1): Plain error"
    )
