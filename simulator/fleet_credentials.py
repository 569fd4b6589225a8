"""The account every host of a fleet accepts, its CA and its SSH client key, made at start-up."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh

from simulator import files
from simulator.run_options import RunOptions
from simulator.ssh import SSHAccount
from simulator.ssh import load_or_create_host_key as host_key

if TYPE_CHECKING:
    from simulator.tls import FleetCA
    from simulator.winrm import Account


@dataclass(frozen=True, slots=True)
class FleetCredentials:
    """What the listeners accept: one password on every host, over WinRM (its HTTPS signed by
    the fleet's CA) and SSH (cmscan's client key too). None where the listener is off."""

    password: str = ""
    ca: FleetCA | None = None
    account: Account | None = None
    ssh_account: SSHAccount | None = None


def load_credentials(options: RunOptions, paths: files.FleetFiles) -> FleetCredentials:
    """The credentials for a starting fleet: a new CA, the password and client key kept."""
    password = _password(paths.password)
    ca: FleetCA | None = None
    account: Account | None = None
    if options.winrm_port is not None or options.winrm_https_port is not None:
        # The WinRM stack (pypsrp, spnego) loads only for fleets that listen for WinRM.
        from simulator import tls, winrm

        ca = tls.FleetCA.create(paths.root) if options.winrm_https_port is not None else None
        account = winrm.Account(options.username, password)
    ssh_account: SSHAccount | None = None
    if options.ssh_port is not None:
        client_key = _client_key(paths.client_key)
        ssh_account = SSHAccount(options.username, password, (client_key.convert_to_public(),))
    return FleetCredentials(password, ca, account, ssh_account)


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
