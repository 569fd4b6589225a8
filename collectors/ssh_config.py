"""The SSH collector's settings and pinned host keys, apart from asyncssh so that building the
settings, or the store keeping the pins, does not load it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from collectors.facts import MAX_OUTPUT_BYTES
from collectors.probe import SSH_COMMAND

if TYPE_CHECKING:
    import asyncssh


@dataclass(frozen=True, slots=True)
class SSHConfig:
    """How the SSH collector verifies hosts and bounds what it reads."""

    host_key_policy: Literal["known_hosts", "tofu"] = "known_hosts"
    known_hosts: Path | None = Path("~/.ssh/known_hosts")
    command: str = SSH_COMMAND
    max_output_bytes: int = MAX_OUTPUT_BYTES

    def __post_init__(self) -> None:
        if self.host_key_policy == "known_hosts" and self.known_hosts is None:
            raise ValueError('ssh.host_key_policy = "known_hosts" needs ssh.known_hosts')
        if self.max_output_bytes <= 0:
            raise ValueError("max_output_bytes must be positive")


@dataclass(frozen=True, slots=True)
class PinnedKey:
    """An SSH host key as pinned: its algorithm, SHA256 fingerprint and OpenSSH public form."""

    key_type: str
    fingerprint: str  # SHA256:..., as ssh-keygen -l prints it
    public_key: str  # "ssh-ed25519 AAAA..."

    @classmethod
    def of(cls, key: asyncssh.SSHKey) -> PinnedKey:
        public = key.export_public_key("openssh").decode("ascii").split()
        return cls(
            key_type=key.get_algorithm(),
            fingerprint=key.get_fingerprint("sha256"),
            public_key=" ".join(public[:2]),
        )


class HostKeyStore(Protocol):
    """Where host keys pinned on first use are kept (store.host_keys implements it)."""

    async def get(self, host: str, port: int) -> PinnedKey | None:
        """The key pinned for host:port, or None before first use."""
        ...

    async def pin(self, host: str, port: int, key: PinnedKey) -> PinnedKey:
        """Pin `key` unless a key is already pinned; return the key pinned now (either one)."""
        ...
