"""Run a whole simulated fleet in one asyncio loop: every host's listeners, admin API and files."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

from simulator import files
from simulator.admin import FleetAdmin, admin_app
from simulator.admin_server import AdminServer
from simulator.file_limits import descriptors_needed, raise_file_limit
from simulator.fleet import Fleet, SimHost, build_fleet
from simulator.fleet_credentials import FleetCredentials, load_credentials
from simulator.listeners import HostListeners
from simulator.run_options import RunOptions
from simulator.users_report import users_report_csv


class RunningFleet:
    """A fleet whose listeners are up. Use `async with run_fleet(...)`, or a FleetThread."""

    def __init__(self, options: RunOptions, fleet: Fleet) -> None:
        self.options = options
        self.fleet = fleet
        self.files = files.FleetFiles(options.out_dir)
        self.credentials = FleetCredentials()
        self.admin_token = secrets.token_urlsafe(32)
        self.listeners = HostListeners(options, self.files)
        self.admin = FleetAdmin(fleet, refresh=self.refresh, publish=self.publish)
        self._admin_server = AdminServer()

    @property
    def password(self) -> str:
        return self.credentials.password

    @property
    def admin_url(self) -> str:
        return self._admin_server.url

    async def start(self) -> None:
        opts = self.options
        per_host = sum(p is not None for p in (opts.winrm_port, opts.winrm_https_port))
        per_host += opts.ssh_port is not None
        raise_file_limit(descriptors_needed(len(self.fleet), max(1, per_host)))
        self.files.root.mkdir(parents=True, exist_ok=True)
        self.credentials = load_credentials(opts, self.files)
        try:
            for host in self.fleet:
                await self.listeners.start(host, self.credentials)
            app = admin_app(self.admin, self.admin_token, self.manifest)
            await self._admin_server.start(app, opts.admin_port)
        except BaseException:
            await self.close()
            raise
        self._write_files()

    async def refresh(self, host: SimHost) -> None:
        """Bring a host's listeners in line with its fault (power off/on, black hole)."""
        await self.listeners.refresh(host, self.credentials)

    def manifest(self) -> dict[str, Any]:
        ssh = self.credentials.ssh_account is not None
        return files.manifest(
            self.fleet,
            {
                "username": self.options.username,
                "password": self.password,
                "ca_file": str(self.files.ca.resolve()) if self.credentials.ca else None,
                "ssh_client_key": str(self.files.client_key.resolve()) if ssh else None,
                "ssh_known_hosts": str(self.files.known_hosts.resolve()) if ssh else None,
                "admin_url": self.admin_url,
                "admin_token": self.admin_token,
                "config": str(self.files.config.resolve()),
                "inventory": str(self.files.inventory.resolve()),
                "epraccur": str(self.files.epraccur.resolve()),
                "users_report": str(self.files.users_report.resolve()),
            },
        )

    def publish(self) -> None:
        """Rewrite sim.json (atomically) after a change."""
        text = json.dumps(self.manifest(), indent=1) + "\n"
        files.write_atomically(self.files.manifest, text, private=True)

    def _write_files(self) -> None:
        winrm = self.credentials.account is not None
        ssh = self.credentials.ssh_account is not None
        files.write_atomically(self.files.inventory, files.inventory_csv(self.fleet))
        files.write_atomically(self.files.epraccur, files.epraccur_csv(self.fleet))
        files.write_atomically(self.files.users_report, users_report_csv(self.fleet))
        if ssh:
            files.write_atomically(self.files.known_hosts, self.listeners.known_hosts())
        files.write_atomically(
            self.files.config,
            files.cmscan_toml(self.files, username=self.options.username, winrm=winrm, ssh=ssh),
        )
        self.publish()

    async def close(self) -> None:
        await self._admin_server.close()
        await self.listeners.close()


@contextlib.asynccontextmanager
async def run_fleet(options: RunOptions) -> AsyncIterator[RunningFleet]:
    """Start a fleet in the running loop, and stop it on leaving the block."""
    running = RunningFleet(options, build_fleet(options.fleet))
    await running.start()
    try:
        yield running
    finally:
        await running.close()
