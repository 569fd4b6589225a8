"""Collectors: the probe, its facts, and the transports that run it (WinRM, SSH).

`REGISTRY` maps each transport name an inventory may use to the constructor of its
collector. Constructors import their transport's library when called, so code that only
needs the facts schema (the policy engine, the simulator) does not load pypsrp or asyncssh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collectors.base import Collector
    from collectors.ssh_config import HostKeyStore, SSHConfig
    from collectors.winrm_config import WinRMConfig


@dataclass(frozen=True, slots=True)
class CollectorOptions:
    """What every collector constructor may draw on; None means that transport's defaults."""

    winrm: WinRMConfig | None = None
    ssh: SSHConfig | None = None
    host_keys: HostKeyStore | None = None  # needed when ssh.host_key_policy is "tofu"


def _winrm(options: CollectorOptions, *, https: bool) -> Collector:
    from collectors.winrm import WinRMCollector
    from collectors.winrm_config import WinRMConfig

    return WinRMCollector(replace(options.winrm or WinRMConfig(), https=https))


def winrm_http(options: CollectorOptions) -> Collector:
    """WinRM on 5985: HTTP with NTLM/Kerberos/CredSSP message encryption."""
    return _winrm(options, https=False)


def winrm_https(options: CollectorOptions) -> Collector:
    """WinRM on 5986: HTTPS, certificates verified unless configured otherwise."""
    return _winrm(options, https=True)


def ssh(options: CollectorOptions) -> Collector:
    """Windows OpenSSH on 22: powershell.exe with the probe on stdin."""
    from collectors.ssh import SSHCollector

    return SSHCollector(options.ssh, host_keys=options.host_keys)


REGISTRY: dict[str, Callable[[CollectorOptions], Collector]] = {
    "winrm": winrm_http,
    "winrm-https": winrm_https,
    "ssh": ssh,
}
