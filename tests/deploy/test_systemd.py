"""The systemd unit, its environment file and the example /etc/cmscan/cmscan.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import load_settings, parse_listen
from tests.deploy.assets import DEPLOY
from tests.support import need_executable

SYSTEMD = DEPLOY / "systemd"
UNIT = SYSTEMD / "cmscan.service"


def directives(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) for every directive, in order; keys may repeat in systemd."""
    found = []
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def service() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for section, key, value in directives(UNIT):
        if section == "Service":
            values.setdefault(key, []).append(value)
    return values


def test_systemd_analyze_finds_nothing_wrong(tmp_path: Path) -> None:
    analyze = need_executable("systemd-analyze", "systemd")
    # verify also checks that ExecStart exists: point it at this checkout's cmscan.
    cmscan = Path(sys.executable).with_name("cmscan")
    text = UNIT.read_text(encoding="utf-8").replace("/opt/cmscan/bin/cmscan", str(cmscan))
    unit = tmp_path / "cmscan.service"
    unit.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout + result.stderr == ""


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("User", "cmscan"),
        ("Group", "cmscan"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("StateDirectory", "cmscan"),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "2"),
        ("CapabilityBoundingSet", ""),
        ("EnvironmentFile", "/etc/cmscan/cmscan.env"),
        ("UMask", "0077"),
    ],
)
def test_the_unit_is_hardened(key: str, value: str) -> None:
    assert service().get(key) == [value]


def test_the_only_writable_place_is_the_state_directory() -> None:
    values = service()
    assert "ReadWritePaths" not in values
    assert "DynamicUser" not in values  # a dedicated user, so files in /etc/cmscan can be its
    assert values["WorkingDirectory"] == ["/var/lib/cmscan"]
    assert int(values["LimitNOFILE"][0]) >= 8192
    # It must outlast daemon.grace so that in-flight probes finish and results are written.
    assert int(values["TimeoutStopSec"][0].removesuffix("s")) > 30


def test_the_example_config_loads_and_keeps_secrets_out() -> None:
    (start,) = service()["ExecStart"]
    assert start.endswith("daemon --config /etc/cmscan/cmscan.toml")
    settings = load_settings(config_file=SYSTEMD / "cmscan.toml")
    assert parse_listen(settings.daemon.listen)[0] == "127.0.0.1"
    assert settings.database_url.startswith("sqlite:////var/lib/cmscan/")
    assert settings.winrm.verify_tls
    profile = settings.credentials["default"]
    assert profile.password_env
    assert profile.password_file is None
    environment = dict(
        line.split("=", 1)
        for line in (SYSTEMD / "cmscan.env").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    # The password the profile names is set in the environment file, under a name that
    # the settings loader does not take for a setting.
    assert profile.password_env in environment
    assert not profile.password_env.startswith("CMSCAN_")


def test_the_system_user_is_declared_for_sysusers() -> None:
    lines = [
        line.split()
        for line in (SYSTEMD / "cmscan.sysusers.conf").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0][:3] == ["u", "cmscan", "-"]
    assert lines[0][-2:] == ["/var/lib/cmscan", "/usr/sbin/nologin"]
