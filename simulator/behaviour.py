"""What a simulated host does, as seen by its protocol endpoints (WinRM, SSH)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


class Fault(enum.StrEnum):
    """Ways a simulated host misbehaves, each as a real Windows host would."""

    POWERED_OFF = "powered-off"  # nothing listens: connection refused
    BLACK_HOLE = "black-hole"  # accepts the connection, never answers
    SLOW = "slow"  # answers correctly, but every step takes several times longer
    BAD_CREDENTIALS = "bad-credentials"  # rejects our account: HTTP 401 / SSH auth failure
    QUOTA_EXCEEDED = "quota-exceeded"  # WinRM MaxShellsPerUser fault (HTTP 500 + WS-Man fault)
    RESET = "reset"  # connection reset in the middle of a response
    MALFORMED_OUTPUT = "malformed-output"  # the probe prints broken JSON
    OVERSIZED_OUTPUT = "oversized-output"  # the probe prints far more than any real document
    PROBE_EXCEPTION = "probe-exception"  # the probe raises a terminating PowerShell error


@dataclass(frozen=True, slots=True)
class Timing:
    """One draw from a host's latency model, in seconds (jitter already applied)."""

    round_trip: float  # added to every request/response exchange
    runspace_open: float  # PSRP runspace pool opening (or shell creation)
    script_run: float  # the script's own run time


@dataclass(frozen=True, slots=True)
class PowerShellError:
    """A terminating error as PowerShell reports it (an ErrorRecord, reduced)."""

    message: str
    category: str = "NotSpecified"  # ErrorCategory name, e.g. InvalidOperation
    fully_qualified_error_id: str = "RuntimeException"
    exception_type: str = "System.Management.Automation.RuntimeException"


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """What running a script produced: text output, or a terminating error."""

    output: str = ""
    error: PowerShellError | None = None


class SimulatedHost(Protocol):
    """The behaviour an endpoint asks its host for; the fleet model implements it."""

    @property
    def hostname(self) -> str: ...

    @property
    def fault(self) -> Fault | None: ...

    def timing(self) -> Timing:
        """Draw the next latency sample (seeded, so a fleet replays the same way)."""
        ...

    def run_script(self, script: str, parameters: Mapping[str, object]) -> ScriptResult:
        """Run a PowerShell script: the cmscan probe answers with this host's facts (filtered by
        its `Patterns` parameter); anything else gets a realistic PowerShell error."""
        ...
