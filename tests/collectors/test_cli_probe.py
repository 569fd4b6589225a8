"""`cmscan probe` as an engineer runs it, against a real sshd standing in for a workstation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from tests.collectors.sshd import SSHServer, running_sshd
from tests.support import free_port

pytestmark = pytest.mark.integration

CMSCAN = [sys.executable, "-m", "scanner"]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path, sshd: SSHServer) -> Path:
    """A directory with a cmscan.toml for the sshd, and an inventory naming it."""
    (tmp_path / "known_hosts").write_text(
        sshd.known_hosts_line("ws01.example.nhs.uk") + sshd.known_hosts_line("127.0.0.1")
    )
    (tmp_path / "cmscan.toml").write_text(
        f"""
database_url = "sqlite:///{tmp_path / "cmscan.db"}"

[timeouts]
connect = "5s"
operation = "10s"
total = "15s"

[ssh]
known_hosts = "{tmp_path / "known_hosts"}"

[credentials.fleet]
username = "{sshd.user}"
ssh_key_file = "{sshd.client_key_file}"

[credentials.nopassword]
username = "cmscan"
password_env = "CMSCAN_TEST_UNSET_PASSWORD"
"""
    )
    (tmp_path / "hosts.csv").write_text(
        "hostname,address,port,transport,ccg_code,credential_profile\n"
        f"ws01.example.nhs.uk,127.0.0.1,{sshd.port},ssh,00K,fleet\n"
    )
    code, _, stderr = invoke("inventory", "import", str(tmp_path / "hosts.csv"), cwd=tmp_path)
    assert code == 0, stderr
    return tmp_path


@pytest.fixture(autouse=True)
def _no_cmscan_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith("CMSCAN_"):
            monkeypatch.delenv(name)


def invoke(*args: str, cwd: Path) -> tuple[int, str, str]:
    """The command run in this process (much faster than a new interpreter per case)."""
    runner = CliRunner(env={"COLUMNS": "200"})  # keep rich from wrapping error panels
    result = runner.invoke(app, [*args, "--config", str(cwd / "cmscan.toml")])
    return result.exit_code, result.stdout, result.stderr


def cmscan(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CMSCAN_")}
    environment["COLUMNS"] = "200"  # keep rich from wrapping the lines the tests read
    return subprocess.run(
        [*CMSCAN, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=120
    )


def test_probe_an_inventoried_host_by_short_name(workdir: Path) -> None:
    # The one case run as a user would, in a process of its own.
    result = cmscan("probe", "WS01", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "ws01.example.nhs.uk" in result.stdout
    assert "ssh 127.0.0.1" in result.stdout
    assert "NHS Credential Management" in result.stdout
    assert "4.1.2.0" in result.stdout
    assert "SCardSvr" in result.stdout
    assert "verdict: compliant" in result.stdout


def test_probe_as_json(workdir: Path, sshd: SSHServer) -> None:
    code, stdout, stderr = invoke("probe", "ws01.example.nhs.uk", "--json", cwd=workdir)
    assert code == 0, stderr
    document = json.loads(stdout)
    assert document["outcome"] == "ok"
    assert document["inventoried"] is True
    assert document["transport"] == "ssh"
    assert document["details"]["host_key"] == sshd.fingerprint
    assert document["facts"]["schema_version"] == 1
    assert document["facts"]["probe"]["patterns"]  # the active policy's watched patterns
    assert document["verdict"]["status"] == "compliant"


def test_probe_an_address_that_is_not_inventoried(workdir: Path, sshd: SSHServer) -> None:
    # "localhost" is no inventoried name (127.0.0.1 is: ws01's address).
    code, stdout, stderr = invoke(
        "probe", "localhost", "-t", "ssh", "-p", str(sshd.port), "-P", "fleet", cwd=workdir
    )
    assert code == 0, stderr
    assert "not in the inventory" in stdout


def test_a_host_that_cannot_be_probed_exits_1_with_the_outcome(workdir: Path) -> None:
    closed = str(free_port())
    code, stdout, _ = invoke("probe", "ws01", "--port", closed, "--json", cwd=workdir)
    assert code == 1
    document = json.loads(stdout)
    assert document["outcome"] == "unreachable"
    assert "Connection refused" in document["reason"]
    code, _, stderr = invoke("probe", "ws01", "--port", closed, cwd=workdir)
    assert code == 1
    assert "unreachable" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ws01", "-P", "missing"), "credential profile 'missing' is not configured"),
        (("ws01", "-P", "nopassword"), "CMSCAN_TEST_UNSET_PASSWORD is not set"),
        (("ws01", "--transport", "telnet"), "telnet"),
        (("ws01", "--port", "70000"), "less than or equal to 65535"),
        (("not a host",), "neither a host name nor an address"),
    ],
)
def test_usage_and_configuration_errors_exit_2(
    workdir: Path, args: tuple[str, ...], message: str
) -> None:
    code, _, stderr = invoke("probe", *args, cwd=workdir)
    assert code == 2
    assert message in " ".join(stderr.split())
