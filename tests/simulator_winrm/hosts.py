"""A SimulatedHost for tests that records the scripts it runs; its fault may change mid-test."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from simulator.behaviour import Fault, PowerShellError, ScriptResult, Timing
from simulator.winrm import Account

ACCOUNT = Account("CMSCAN\\svc-scan", "Corr3ct-Horse!")
NO_DELAY = Timing(round_trip=0.0, runspace_open=0.0, script_run=0.0)


@dataclass
class ScriptedHost:
    """Answers every script with `output` (and `error`, if set), remembering each call."""

    hostname: str = "pc-0042.a81001.nhs.uk"
    fault: Fault | None = None
    delays: Timing = NO_DELAY
    output: str = '{"cmscan-probe/1": true}'
    error: PowerShellError | None = None
    calls: list[tuple[str, dict[str, object]]] = field(default_factory=list)

    def timing(self) -> Timing:
        return self.delays

    def run_script(self, script: str, parameters: Mapping[str, object]) -> ScriptResult:
        self.calls.append((script, dict(parameters)))
        return ScriptResult(self.output, self.error)
