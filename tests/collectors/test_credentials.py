"""Credential profiles: where secrets come from, and that they never leak out again."""

from __future__ import annotations

import logging
import pickle
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest
from pydantic import ValidationError

from collectors.base import Outcome, Target, Timeouts
from collectors.credentials import (
    CredentialError,
    CredentialProfile,
    Credentials,
    Secret,
    read_secret_file,
    resolve,
)
from collectors.ssh import SSHCollector, SSHConfig
from simulator.ssh import SSHAccount, SSHEndpoint, known_hosts_line, start_ssh
from tests.collectors.hosts import WATCHED, FixtureHost

PASSWORD = "Correct-Horse-7731!"
WRONG = "Battery-Staple-0042?"
PASSPHRASE = "Kestrel-Over-Harrow-19"


def private_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_password_from_the_environment() -> None:
    profile = CredentialProfile(username="NHS\\cmscan", password_env="CMSCAN_PW")
    credentials = resolve("practice", profile, {"CMSCAN_PW": PASSWORD})
    assert credentials.password == Secret(PASSWORD)
    assert credentials.username == "NHS\\cmscan"
    assert credentials.auth == "negotiate"


def test_missing_environment_variable_is_named() -> None:
    profile = CredentialProfile(username="cmscan", password_env="CMSCAN_PW")
    with pytest.raises(CredentialError, match="CMSCAN_PW is not set"):
        resolve("practice", profile, {})
    with pytest.raises(CredentialError, match="'practice'"):
        resolve("practice", profile, {"CMSCAN_PW": ""})


def test_password_from_a_private_file(tmp_path: Path) -> None:
    path = private_file(tmp_path / "pw", PASSWORD + "\r\n")
    profile = CredentialProfile(username="cmscan", password_file=path)
    assert resolve("practice", profile, {}).password == Secret(PASSWORD)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = private_file(tmp_path / "pw", PASSWORD, mode)
    with pytest.raises(CredentialError) as caught:
        read_secret_file(path)
    assert f"chmod 600 {path}" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_a_missing_or_odd_secret_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="cannot read secret file"):
        read_secret_file(tmp_path / "absent")
    with pytest.raises(CredentialError, match="not a regular file"):
        read_secret_file(tmp_path)
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    binary.chmod(0o600)
    with pytest.raises(CredentialError, match="UnicodeDecodeError"):
        read_secret_file(binary)


def test_ssh_key_file_must_be_private(tmp_path: Path) -> None:
    key = private_file(tmp_path / "id_ed25519", "not really a key", 0o644)
    profile = CredentialProfile(username="cmscan", ssh_key_file=key)
    with pytest.raises(CredentialError, match="readable by others"):
        resolve("ssh", profile, {})
    key.chmod(0o600)
    assert resolve("ssh", profile, {}).ssh_key_file == key


def test_passphrase_comes_from_the_environment(tmp_path: Path) -> None:
    key = private_file(tmp_path / "id_ed25519", "key")
    profile = CredentialProfile(
        username="cmscan", ssh_key_file=key, ssh_key_passphrase_env="CMSCAN_KEY_PASS"
    )
    credentials = resolve("ssh", profile, {"CMSCAN_KEY_PASS": PASSPHRASE})
    assert credentials.ssh_key_passphrase == Secret(PASSPHRASE)


def test_client_certificate_profile(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("certificate")
    key = private_file(tmp_path / "client.key", "key")
    profile = CredentialProfile(auth="certificate", client_cert_file=cert, client_key_file=key)
    credentials = resolve("cert", profile, {})
    assert credentials.client_cert_file == cert
    with pytest.raises(CredentialError, match="no certificate"):
        resolve("cert", profile.model_copy(update={"client_cert_file": tmp_path / "x"}), {})


def test_kerberos_may_use_the_ticket_cache_without_a_username() -> None:
    credentials = resolve("domain", CredentialProfile(auth="kerberos"), {})
    assert credentials.username is None
    assert credentials.password is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"username": "u", "password_env": "A", "password_file": "/x"}, "not both"),
        ({"auth": "certificate"}, "client_cert_file and client_key_file"),
        ({"auth": "ntlm"}, "needs a username"),
        ({"username": "u", "auth": "digest"}, "auth"),
        ({"username": "u", "password": "inline"}, "Extra inputs"),
    ],
)
def test_profile_mistakes_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CredentialProfile.model_validate(fields)


def test_secrets_print_as_a_redaction() -> None:
    secret = Secret(PASSWORD)
    logged = logging.LogRecord("cmscan", logging.INFO, "", 0, "%s %r", (secret, secret), None)
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", logged.getMessage()):
        assert PASSWORD not in shown
    assert secret.reveal() == PASSWORD
    assert secret == Secret(PASSWORD)
    assert secret != Secret(WRONG)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)


def test_credentials_repr_hides_every_secret(tmp_path: Path) -> None:
    credentials = Credentials(
        profile="p",
        username="cmscan",
        auth="ntlm",
        password=Secret(PASSWORD),
        ssh_key_passphrase=Secret(PASSPHRASE),
    )
    for shown in (repr(credentials), str(credentials)):
        assert PASSWORD not in shown
        assert PASSPHRASE not in shown
    with pytest.raises(TypeError):
        pickle.dumps(credentials)


def test_error_messages_never_carry_a_secret(tmp_path: Path) -> None:
    path = private_file(tmp_path / "pw", PASSWORD, 0o644)
    profile = CredentialProfile(username="cmscan", password_file=path)
    with pytest.raises(CredentialError) as caught:
        resolve("practice", profile, {})
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value)


@pytest.fixture
async def ssh_endpoint() -> AsyncIterator[tuple[SSHEndpoint, asyncssh.SSHKey]]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    account = SSHAccount("cmscan-scan", PASSWORD)
    endpoint = await start_ssh(
        FixtureHost(), address="127.0.0.1", port=0, account=account, host_key=key
    )
    try:
        yield endpoint, key
    finally:
        await endpoint.close()


async def test_a_failing_ssh_probe_leaks_no_secret(
    ssh_endpoint: tuple[SSHEndpoint, asyncssh.SSHKey],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint, key = ssh_endpoint
    known = tmp_path / "known_hosts"
    known.write_text(known_hosts_line(key, ("127.0.0.1",), endpoint.port))
    collector = SSHCollector(SSHConfig(known_hosts=known))
    target = Target("127.0.0.1", endpoint.port, "ssh", patterns=WATCHED)
    timeouts = Timeouts(connect=2, operation=2, total=4)
    caplog.set_level(logging.DEBUG)  # every library's debug output, unscrubbed
    results = []
    for password in (WRONG, PASSWORD):
        credentials = Credentials(
            profile="practice", username="cmscan-scan", auth="ntlm", password=Secret(password)
        )
        results.append(await collector.collect(target, credentials, timeouts))
    assert [r.outcome for r in results] == [Outcome.AUTH_FAILED, Outcome.OK]
    assert caplog.records, "debug logging was captured"
    evidence = [caplog.text, *(repr(r) for r in results), *(r.reason for r in results)]
    evidence += [str(record.args) for record in caplog.records]
    evidence += [r.facts.model_dump_json() for r in results if r.facts is not None]
    for text in evidence:
        assert WRONG not in text
        assert PASSWORD not in text
