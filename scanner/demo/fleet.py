"""The demo's simulated fleet, in a process of its own so that it has a core of its own."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

START_TIMEOUT = 120.0


class FleetError(Exception):
    """The simulated fleet did not start; the message carries its own explanation."""


@dataclass
class DemoFleet:
    process: asyncio.subprocess.Process
    directory: Path
    manifest: dict[str, Any]

    @property
    def admin_url(self) -> str:
        return str(self.manifest["admin_url"])

    async def act(self, action: str, **selection: Any) -> list[dict[str, Any]]:
        """An administrator's change through the simulator's admin API; the hosts changed."""
        headers = {"Authorization": f"Bearer {self.manifest['admin_token']}"}
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{self.admin_url}/v1/actions/{action}", json=selection, headers=headers
            )
        response.raise_for_status()
        changed: list[dict[str, Any]] = response.json()["changed"]
        return changed

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def start_fleet(
    directory: Path, *, hosts: int, seed: int, faults: float, rtt_ms: float, exec_ms: float
) -> DemoFleet:
    """Run `cmscan simulate` and wait until its hosts listen and sim.json is written."""
    manifest_path, log = _prepare(directory)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scanner",
        "simulate",
        "--hosts",
        str(hosts),
        "--seed",
        str(seed),
        "--faults",
        str(faults),
        "--transport",
        "mixed",
        "--out",
        str(directory),
        "--rtt-ms",
        str(rtt_ms),
        "--exec-ms",
        str(exec_ms),
        "--base-address",
        "127.20.0.0",
        "--winrm-port",
        "0",
        "--winrm-https-port",
        "0",
        "--ssh-port",
        "0",
        stdout=log,
        stderr=log,
    )
    log.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while loop.time() < deadline:
        if process.returncode is not None:
            tail = (directory / "simulator.log").read_text(errors="replace")[-2000:]
            raise FleetError(f"the simulated fleet stopped (exit {process.returncode}):\n{tail}")
        manifest = _read_manifest(manifest_path)
        if manifest and await _admin_answers(manifest):
            return DemoFleet(process, directory, manifest)
        await asyncio.sleep(0.2)
    process.kill()
    raise FleetError(f"the simulated fleet did not start within {START_TIMEOUT:.0f} s")


def _prepare(directory: Path) -> tuple[Path, BinaryIO]:
    directory.mkdir(parents=True, exist_ok=True)
    manifest = directory / "sim.json"
    manifest.unlink(missing_ok=True)  # a previous run's would look ready at once
    return manifest, (directory / "simulator.log").open("wb")


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None  # not written yet, or being written
    return data


async def _admin_answers(manifest: dict[str, Any]) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            headers = {"Authorization": f"Bearer {manifest['admin_token']}"}
            response = await client.get(f"{manifest['admin_url']}/v1/actions", headers=headers)
        return response.status_code == 200
    except httpx.HTTPError:
        return False
