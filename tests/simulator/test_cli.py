"""`cmscan simulate`: help, option errors, and a real run stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from scanner.cli import app


def test_help_explains_the_options() -> None:
    result = CliRunner().invoke(app, ["simulate", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    for option in ("--hosts", "--seed", "--profile", "--faults", "--rtt-ms", "--exec-ms", "--out",
                   "--transport", "--base-address", "--winrm-port", "--winrm-https-port",
                   "--ssh-port"):  # fmt: skip
        assert option in result.output
    assert "sim.json" in result.output


def test_bad_options_exit_2_saying_why(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_port = runner.invoke(app, ["simulate", "--ssh-port", "twenty", "--out", str(tmp_path)])
    assert bad_port.exit_code == 2
    assert "is not a port" in bad_port.output
    bad_base = runner.invoke(
        app, ["simulate", "--base-address", "10.1.0.0", "--out", str(tmp_path)]
    )
    assert bad_base.exit_code == 2
    assert "not in 127.0.0.0/8" in bad_base.output
    no_listener = runner.invoke(
        app, ["simulate", "--transport", "ssh", "--ssh-port", "off", "--out", str(tmp_path)]
    )
    assert no_listener.exit_code == 2
    assert "transport ssh needs its listener" in no_listener.output


def test_runs_until_sigterm_and_stops_cleanly(tmp_path: Path, loopback_base: str) -> None:
    out = tmp_path / "fleet"
    command = [
        sys.executable, "-m", "scanner", "simulate", "--hosts", "4", "--transport", "ssh",
        "--winrm-port", "off", "--winrm-https-port", "off", "--ssh-port", "0",
        "--base-address", loopback_base, "--out", str(out), "--faults", "0.5",
    ]  # fmt: skip
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    ) as process:
        try:
            _check_run(process, out)
        finally:
            if process.poll() is None:
                process.kill()


def _check_run(process: subprocess.Popen[str], out: Path) -> None:
    """Wait for the banner, check the files, then stop the fleet with SIGTERM."""
    deadline = time.monotonic() + 60
    lines = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "Press Ctrl-C" in line or not line:
            break
    text = "".join(lines)
    assert "Press Ctrl-C to stop." in text, text + (process.stderr.read() if process.stderr else "")
    assert f"cmscan inventory import {out.resolve() / 'inventory.csv'}" in text
    manifest = json.loads((out / "sim.json").read_text())
    assert len(manifest["hosts"]) == 4
    assert sum(h["fault"] is not None for h in manifest["hosts"]) == 2
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def test_the_cli_default_base_address_is_the_fleets() -> None:
    # The CLI spells it out so that `cmscan --help` imports no simulator code.
    from scanner.cli import simulate
    from simulator import fleet

    assert simulate.DEFAULT_BASE_ADDRESS == fleet.DEFAULT_BASE_ADDRESS
