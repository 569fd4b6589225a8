"""Each host's WinRM and SSH listeners, bound to its own loopback address, following its power."""

from __future__ import annotations

import socket
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import asyncssh

from simulator.files import FleetFiles
from simulator.fleet import SimHost
from simulator.fleet_credentials import FleetCredentials
from simulator.run_options import FleetStartError, RunOptions
from simulator.ssh import SSHEndpoint, bound_socket, known_hosts_line, start_ssh
from simulator.ssh import load_or_create_host_key as host_key

if TYPE_CHECKING:
    from simulator.winrm import WinRMEndpoint

T = TypeVar("T")


@dataclass
class HostEndpoints:
    """A host's listeners. A switched-off host keeps its ports bound but not listening, so a
    client is refused and power-on gets the same ports back."""

    host: SimHost
    winrm: WinRMEndpoint | None = None
    ssh: SSHEndpoint | None = None
    reserved: list[socket.socket] = field(default_factory=list)


class HostListeners:
    """The listeners of every host in a fleet, started host by host and closed all together."""

    def __init__(self, options: RunOptions, paths: FleetFiles) -> None:
        self.options = options
        self.paths = paths
        self.endpoints: dict[str, HostEndpoints] = {}
        self.host_keys: dict[str, asyncssh.SSHKey] = {}

    async def start(self, host: SimHost, credentials: FleetCredentials) -> None:
        """Start a host's listeners (WinRM only once it is switched on) and note their ports."""
        opts = self.options
        endpoints = self.endpoints[host.hostname] = HostEndpoints(host)
        if opts.ssh_port is not None:
            assert credentials.ssh_account is not None
            key = host_key(self.paths.host_key(host.hostname))
            self.host_keys[host.hostname] = key
            endpoints.ssh = await _bound(
                start_ssh(
                    host,
                    address=host.address,
                    port=opts.ssh_port,
                    account=credentials.ssh_account,
                    host_key=key,
                ),
                host,
                "SSH",
                opts.ssh_port,
            )
            host.ssh_port = endpoints.ssh.port
        host.winrm_port = opts.winrm_port
        host.winrm_https_port = opts.winrm_https_port
        await self._align_winrm(endpoints, credentials)

    async def refresh(self, host: SimHost, credentials: FleetCredentials) -> None:
        """Bring a host's listeners in line with its fault (power off/on, black hole)."""
        endpoints = self.endpoints[host.hostname]
        await self._align_winrm(endpoints, credentials)
        if endpoints.ssh is not None:
            await endpoints.ssh.refresh()

    def known_hosts(self) -> str:
        """known_hosts lines for every host's SSH key, under its name and its address."""
        lines = []
        for endpoints in self.endpoints.values():
            host = endpoints.host
            assert host.ssh_port is not None
            key = self.host_keys[host.hostname]
            lines.append(known_hosts_line(key, (host.hostname, host.address), host.ssh_port))
        return "".join(lines)

    async def close(self) -> None:
        for endpoints in self.endpoints.values():
            if endpoints.winrm is not None:
                await endpoints.winrm.close()
                endpoints.winrm = None
            if endpoints.ssh is not None:
                await endpoints.ssh.close()
            for sock in endpoints.reserved:
                sock.close()
            endpoints.reserved.clear()

    async def _align_winrm(self, endpoints: HostEndpoints, credentials: FleetCredentials) -> None:
        """Start or stop a host's WinRM listeners to match whether it is switched on."""
        host = endpoints.host
        opts = self.options
        if opts.winrm_port is None and opts.winrm_https_port is None:
            return
        if not host.powered_on:
            if endpoints.winrm is not None:
                winrm, endpoints.winrm = endpoints.winrm, None
                await winrm.close()
            if not endpoints.reserved:
                for attribute in ("winrm_port", "winrm_https_port"):
                    port = getattr(host, attribute)
                    if port is None:
                        continue
                    sock = await _bound_sync(host, "WinRM", port)
                    endpoints.reserved.append(sock)
                    setattr(host, attribute, sock.getsockname()[1])
            return
        if endpoints.winrm is not None:
            return
        for sock in endpoints.reserved:
            sock.close()
        endpoints.reserved.clear()
        from simulator.winrm import start_winrm

        assert credentials.account is not None
        winrm = await _bound(
            start_winrm(
                host,
                address=host.address,
                account=credentials.account,
                http_port=host.winrm_port,
                https_port=host.winrm_https_port,
                ca=credentials.ca,
            ),
            host,
            "WinRM",
            host.winrm_port,
        )
        endpoints.winrm = winrm
        host.winrm_port = winrm.http_port
        host.winrm_https_port = winrm.https_port


async def _bound(start: Awaitable[T], host: SimHost, what: str, port: int | None) -> T:
    try:
        return await start
    except OSError as exc:
        raise FleetStartError(
            f"cannot listen for {what} on {host.address}:{port} ({host.hostname}): {exc.strerror};"
            " is another fleet running? Use other ports or --base-address"
        ) from None


async def _bound_sync(host: SimHost, what: str, port: int) -> socket.socket:
    async def bind() -> socket.socket:
        return bound_socket(host.address, port)

    return await _bound(bind(), host, what, port)
