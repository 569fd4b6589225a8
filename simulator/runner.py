"""Run a whole simulated fleet in one asyncio loop: every host's listeners, admin API and files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import secrets
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncssh
import uvicorn

from simulator import files
from simulator.admin import Change, FleetAdmin, Selection, admin_app
from simulator.behaviour import Fault
from simulator.fleet import Fleet, FleetOptions, SimHost, build_fleet
from simulator.ssh import SSHAccount, SSHEndpoint, bound_socket, known_hosts_line, start_ssh
from simulator.ssh import load_or_create_host_key as host_key

if TYPE_CHECKING:
    from simulator.tls import FleetCA
    from simulator.winrm import Account, WinRMEndpoint

T = TypeVar("T")

DEFAULT_USERNAME = "cmscan-scan"
ADMIN_ADDRESS = "127.0.0.1"
# File descriptors a fleet needs besides its listeners: the loop, logs, key files, clients.
FD_BASELINE = 256


class _AdminServer(uvicorn.Server):
    """uvicorn without its signal handling: whoever runs the fleet owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class FleetStartError(Exception):
    """The fleet cannot start as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run a fleet: where its files go and which listeners each host gets.
    A port of None switches that listener off; 0 picks a free port per host."""

    fleet: FleetOptions
    out_dir: Path
    winrm_port: int | None = 5985
    winrm_https_port: int | None = 5986
    ssh_port: int | None = 2222
    admin_port: int = 0
    username: str = DEFAULT_USERNAME

    def __post_init__(self) -> None:
        needed = {
            "winrm": self.winrm_port,
            "winrm-https": self.winrm_https_port,
            "ssh": self.ssh_port,
        }
        transports = needed if self.fleet.transport == "mixed" else [self.fleet.transport]
        for transport in transports:
            if needed[transport] is None:
                raise FleetStartError(f"transport {transport} needs its listener, which is off")
        for name in ("winrm_port", "winrm_https_port", "ssh_port", "admin_port"):
            port = getattr(self, name)
            if port is not None and not 0 <= port <= 65535:
                raise FleetStartError(f"{name.replace('_', '-')} {port} is not a port number")


def descriptors_needed(hosts: int, listeners_per_host: int) -> int:
    """Open files a fleet of `hosts` needs: its listeners plus room for clients' connections."""
    return hosts * listeners_per_host + min(hosts, 4096) + FD_BASELINE


def raise_file_limit(needed: int) -> int:
    """Raise RLIMIT_NOFILE's soft limit to `needed`, or say plainly why that is impossible."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise FleetStartError(
            f"this fleet needs about {needed} open files but the hard limit is {hard}: raise it"
            f" (ulimit -Hn {needed} as root, or LimitNOFILE={needed} for a service) or start"
            " fewer hosts"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed


@dataclass
class HostEndpoints:
    """A host's listeners. A switched-off host keeps its ports bound but not listening, so a
    client is refused and power-on gets the same ports back."""

    host: SimHost
    winrm: WinRMEndpoint | None = None
    ssh: SSHEndpoint | None = None
    reserved: list[socket.socket] = field(default_factory=list)


class RunningFleet:
    """A fleet whose listeners are up. Use `async with run_fleet(...)` or `FleetThread`."""

    def __init__(self, options: RunOptions, fleet: Fleet) -> None:
        self.options = options
        self.fleet = fleet
        self.files = files.FleetFiles(options.out_dir)
        self.password = ""
        self.admin_token = secrets.token_urlsafe(32)
        self.admin_url = ""
        self.endpoints: dict[str, HostEndpoints] = {}
        self.admin = FleetAdmin(fleet, refresh=self.refresh, publish=self.publish)
        self._ca: FleetCA | None = None
        self._account: Account | None = None
        self._ssh_account: SSHAccount | None = None
        self._host_keys: dict[str, asyncssh.SSHKey] = {}
        self._admin_server: uvicorn.Server | None = None
        self._admin_task: asyncio.Task[None] | None = None

    # -- start-up ---------------------------------------------------------------------------

    async def start(self) -> None:
        opts = self.options
        listeners = sum(p is not None for p in (opts.winrm_port, opts.winrm_https_port))
        listeners += opts.ssh_port is not None
        raise_file_limit(descriptors_needed(len(self.fleet), max(1, listeners)))
        self.files.root.mkdir(parents=True, exist_ok=True)
        self.password = _password(self.files.password)
        if opts.winrm_port is not None or opts.winrm_https_port is not None:
            from simulator.tls import FleetCA
            from simulator.winrm import Account

            self._ca = (
                FleetCA.create(self.files.root) if opts.winrm_https_port is not None else None
            )
            self._account = Account(opts.username, self.password)
        if opts.ssh_port is not None:
            client_key = _client_key(self.files.client_key)
            self._ssh_account = SSHAccount(
                opts.username, self.password, (client_key.convert_to_public(),)
            )
        try:
            for host in self.fleet:
                self.endpoints[host.hostname] = HostEndpoints(host)
                await self._start_host(host)
            await self._start_admin()
        except BaseException:
            await self.close()
            raise
        self._write_files()

    async def _start_host(self, host: SimHost) -> None:
        opts = self.options
        endpoints = self.endpoints[host.hostname]
        if opts.ssh_port is not None:
            assert self._ssh_account is not None
            key = host_key(self.files.host_key(host.hostname))
            self._host_keys[host.hostname] = key
            endpoints.ssh = await _bound(
                start_ssh(
                    host,
                    address=host.address,
                    port=opts.ssh_port,
                    account=self._ssh_account,
                    host_key=key,
                ),
                host,
                "SSH",
                opts.ssh_port,
            )
            host.ssh_port = endpoints.ssh.port
        host.winrm_port = opts.winrm_port
        host.winrm_https_port = opts.winrm_https_port
        await self._align_winrm(endpoints)

    async def _align_winrm(self, endpoints: HostEndpoints) -> None:
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

        assert self._account is not None
        winrm = await _bound(
            start_winrm(
                host,
                address=host.address,
                account=self._account,
                http_port=host.winrm_port,
                https_port=host.winrm_https_port,
                ca=self._ca,
            ),
            host,
            "WinRM",
            host.winrm_port,
        )
        endpoints.winrm = winrm
        host.winrm_port = winrm.http_port
        host.winrm_https_port = winrm.https_port

    async def _start_admin(self) -> None:
        app = admin_app(self.admin, self.admin_token, self.manifest)
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self._admin_server = _AdminServer(config)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ADMIN_ADDRESS, self.options.admin_port))
        except OSError as exc:
            sock.close()
            raise FleetStartError(
                f"cannot listen for the admin API on {ADMIN_ADDRESS}:{self.options.admin_port}:"
                f" {exc.strerror}"
            ) from None
        self.admin_url = f"http://{ADMIN_ADDRESS}:{sock.getsockname()[1]}"
        server = self._admin_server
        self._admin_task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._admin_task.done():
                self._admin_task.result()
                raise FleetStartError("the admin API stopped while starting")
            await asyncio.sleep(0.01)

    # -- run time ---------------------------------------------------------------------------

    async def refresh(self, host: SimHost) -> None:
        """Bring a host's listeners in line with its fault (power off/on, black hole)."""
        endpoints = self.endpoints[host.hostname]
        await self._align_winrm(endpoints)
        if endpoints.ssh is not None:
            await endpoints.ssh.refresh()

    def manifest(self) -> dict[str, Any]:
        return files.manifest(
            self.fleet,
            {
                "username": self.options.username,
                "password": self.password,
                "ca_file": str(self.files.ca.resolve()) if self._ca else None,
                "ssh_client_key": (
                    str(self.files.client_key.resolve()) if self._ssh_account else None
                ),
                "ssh_known_hosts": (
                    str(self.files.known_hosts.resolve()) if self._ssh_account else None
                ),
                "admin_url": self.admin_url,
                "admin_token": self.admin_token,
                "config": str(self.files.config.resolve()),
                "inventory": str(self.files.inventory.resolve()),
                "epraccur": str(self.files.epraccur.resolve()),
            },
        )

    def publish(self) -> None:
        """Rewrite sim.json (atomically) after a change."""
        text = json.dumps(self.manifest(), indent=1) + "\n"
        files.write_atomically(self.files.manifest, text, private=True)

    def _write_files(self) -> None:
        winrm = self._account is not None
        ssh = self._ssh_account is not None
        files.write_atomically(self.files.inventory, files.inventory_csv(self.fleet))
        files.write_atomically(self.files.epraccur, files.epraccur_csv(self.fleet))
        if ssh:
            lines = []
            for host in self.fleet:
                key = self._host_keys[host.hostname]
                assert host.ssh_port is not None
                lines.append(known_hosts_line(key, (host.hostname, host.address), host.ssh_port))
            files.write_atomically(self.files.known_hosts, "".join(lines))
        files.write_atomically(
            self.files.config,
            files.cmscan_toml(self.files, username=self.options.username, winrm=winrm, ssh=ssh),
        )
        self.publish()

    # -- shut-down --------------------------------------------------------------------------

    async def close(self) -> None:
        if self._admin_server is not None:
            self._admin_server.should_exit = True
        if self._admin_task is not None:
            with contextlib.suppress(Exception):
                await self._admin_task
        for endpoints in self.endpoints.values():
            if endpoints.winrm is not None:
                await endpoints.winrm.close()
                endpoints.winrm = None
            if endpoints.ssh is not None:
                await endpoints.ssh.close()
            for sock in endpoints.reserved:
                sock.close()
            endpoints.reserved.clear()


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


def _password(path: Path) -> str:
    """The simulated account's password: kept across restarts so cmscan.toml stays valid."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    password = secrets.token_urlsafe(18)
    files.write_atomically(path, password + "\n", private=True)
    return password


def _client_key(path: Path) -> asyncssh.SSHKey:
    """The SSH client key cmscan logs in with (mode 0600), kept across restarts."""
    key = host_key(path)
    public = path.with_name(path.name + ".pub")
    if not public.exists():
        public.write_bytes(key.export_public_key("openssh"))
    return key


@contextlib.asynccontextmanager
async def run_fleet(options: RunOptions) -> AsyncIterator[RunningFleet]:
    """Start a fleet in the running loop, and stop it on leaving the block."""
    running = RunningFleet(options, build_fleet(options.fleet))
    await running.start()
    try:
        yield running
    finally:
        await running.close()


class FleetThread:
    """A fleet running in a background thread with its own event loop, for blocking callers
    (pypsrp, tests, benchmarks). Admin calls made here run in the fleet's loop."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._running: RunningFleet | None = None

    @property
    def running(self) -> RunningFleet:
        if self._running is None:
            raise RuntimeError("the fleet is not running")
        return self._running

    @property
    def fleet(self) -> Fleet:
        return self.running.fleet

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 120.0) -> T:
        """Run a coroutine in the fleet's loop and wait for its result."""

        async def wrapped() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(timeout)

    def start(self) -> FleetThread:
        self._thread.start()
        running = RunningFleet(self.options, build_fleet(self.options.fleet))
        try:
            self.call(running.start, timeout=600)
        except BaseException:
            self._stop_loop()
            raise
        self._running = running
        return self

    def stop(self) -> None:
        if self._running is not None:
            running, self._running = self._running, None
            self.call(running.close)
        self._stop_loop()

    def _stop_loop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        if not self._loop.is_running():
            self._loop.close()

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.running.files.manifest.read_text(encoding="utf-8"))
        return data

    def apply(self, action: str, **selection: Any) -> Change:
        admin = self.running.admin
        return self.call(lambda: admin.apply(action, Selection(**selection)))

    def set_fault(self, fault: Fault | None, **selection: Any) -> Change:
        admin = self.running.admin
        return self.call(lambda: admin.set_fault(fault, Selection(**selection)))

    def power_off(self, **selection: Any) -> Change:
        admin = self.running.admin
        return self.call(lambda: admin.power_off(Selection(**selection)))

    def power_on(self, **selection: Any) -> Change:
        admin = self.running.admin
        return self.call(lambda: admin.power_on(Selection(**selection)))

    def __enter__(self) -> FleetThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def fleet_in_thread(options: RunOptions) -> Iterator[FleetThread]:
    with FleetThread(options) as running:
        yield running
