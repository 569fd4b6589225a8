"""The collectors a scanning process uses, built from the settings (winrm, winrm-https, ssh)."""

from __future__ import annotations

from collections.abc import Iterable

from collectors import REGISTRY, CollectorOptions
from collectors.base import Collector
from collectors.ssh_config import SSHConfig
from collectors.winrm_config import WinRMConfig
from config.settings import Settings
from store.db import Database
from store.host_keys import DatabaseHostKeys


class TransportError(ValueError):
    """A transport cannot be built from these settings; the message says which key to fix."""


def collector_options(settings: Settings, *, database: Database | None = None) -> CollectorOptions:
    """The collectors' configuration from [winrm] and [ssh]; SSH pins go to `database`."""
    ssh = settings.ssh
    try:
        ssh_config = SSHConfig(host_key_policy=ssh.host_key_policy, known_hosts=ssh.known_hosts)
        winrm_config = WinRMConfig(
            ca_file=settings.winrm.ca_file,
            verify_tls=settings.winrm.verify_tls,
            max_threads=settings.winrm.max_threads,
        )
    except ValueError as exc:
        raise TransportError(str(exc)) from None
    return CollectorOptions(
        winrm=winrm_config,
        ssh=ssh_config,
        host_keys=DatabaseHostKeys(database) if database is not None else None,
    )


def build_collectors(
    settings: Settings,
    *,
    database: Database | None = None,
    names: Iterable[str] | None = None,
) -> dict[str, Collector]:
    """One collector per transport name (all of them unless `names` narrows it)."""
    options = collector_options(settings, database=database)
    wanted = list(REGISTRY) if names is None else list(dict.fromkeys(names))
    unknown = [name for name in wanted if name not in REGISTRY]
    if unknown:
        raise TransportError(
            f"unknown transport {', '.join(unknown)}; use one of {', '.join(REGISTRY)}"
        )
    if "ssh" in wanted and settings.ssh.host_key_policy == "tofu" and database is None:
        raise TransportError('ssh.host_key_policy = "tofu" needs the database to keep pins')
    collectors: dict[str, Collector] = {}
    for name in wanted:
        try:
            collectors[name] = REGISTRY[name](options)
        except ValueError as exc:
            raise TransportError(f"{name}: {exc}") from None
    return collectors
