"""How the WinRM collector connects: transport names and the settings both WinRM paths share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from collectors.facts import MAX_OUTPUT_BYTES

NAME = "winrm"
NAME_HTTPS = "winrm-https"


@dataclass(frozen=True, slots=True)
class WinRMConfig:
    """How the WinRM collector connects: HTTP with message encryption, or HTTPS."""

    https: bool = False
    ca_file: Path | None = None  # None: the system trust store
    verify_tls: bool = True
    # Worker threads for the pypsrp path (CredSSP and certificate authentication only).
    max_threads: int = 256
    max_output_bytes: int = MAX_OUTPUT_BYTES
    path: str = "wsman"
    # After a failure or the deadline, how long closing the runspace pool may take, so
    # no shell is left behind on a host that is merely slow.
    cleanup_grace_s: float = 5.0
    # A shell that could not be closed is ended by the host itself after this long.
    idle_timeout_s: int = 600

    def __post_init__(self) -> None:
        if self.max_threads < 1:
            raise ValueError("winrm.max_threads must be at least 1")
        if self.max_output_bytes <= 0:
            raise ValueError("max_output_bytes must be positive")
        if self.cleanup_grace_s < 0:
            raise ValueError("cleanup_grace_s must not be negative")

    @property
    def transport(self) -> str:
        return NAME_HTTPS if self.https else NAME
