"""The collector protocol: what every transport takes, what it returns, and the outcomes."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collectors.credentials import Credentials
    from collectors.facts import Facts


class Outcome(enum.StrEnum):
    """How a scan ended. Exactly one per scan; a failed probe is data, not an exception."""

    OK = "ok"
    UNREACHABLE = "unreachable"  # refused, no route, name not found, connect timed out
    TIMEOUT = "timeout"  # connected, but the host did not finish within its deadline
    AUTH_FAILED = "auth_failed"  # the host rejected the credentials
    PROTOCOL_ERROR = "protocol_error"  # the transport broke: fault, reset, TLS, host key
    PROBE_ERROR = "probe_error"  # the probe ran but its output was unusable


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Deadlines for one probe, in seconds; `total` holds even if the host never answers."""

    connect: float = 10.0
    operation: float = 60.0
    total: float = 90.0

    def __post_init__(self) -> None:
        for name in ("connect", "operation", "total"):
            if getattr(self, name) <= 0:
                raise ValueError(f"timeout {name} must be positive")


@dataclass(frozen=True, slots=True)
class Target:
    """Where to probe and what to look for: `address` (if set) is dialled, `hostname` names the
    host, and `patterns` are the product name patterns the probe reports (from the policy)."""

    hostname: str
    port: int
    transport: str
    address: str | None = None
    patterns: tuple[str, ...] = ()
    # Told the moment the host accepts the credentials, long before the probe ends: the
    # lockout guard lets a new password's probation end after one handshake, not one probe.
    on_authenticated: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    @property
    def dial(self) -> str:
        return self.address or self.hostname

    def authenticated(self) -> None:
        """Report that the host accepted the credentials (a collector may call it once)."""
        if self.on_authenticated is not None:
            self.on_authenticated()


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The result of one probe: facts when `outcome` is OK, otherwise a short reason."""

    outcome: Outcome
    transport: str
    duration_s: float
    reason: str = ""
    facts: Facts | None = None
    # Transport details worth keeping with the scan (e.g. an SSH host key fingerprint).
    details: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.outcome is Outcome.OK) != (self.facts is not None):
            raise ValueError("a scan has facts exactly when its outcome is ok")


class Collector(Protocol):
    """One transport. Implementations translate every foreign exception into an Outcome."""

    name: str

    async def collect(
        self, target: Target, credentials: Credentials, timeouts: Timeouts
    ) -> ScanResult: ...

    async def aclose(self) -> None: ...
