"""A small simulated host for collector tests: fixture facts, and every fault on request."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors.facts import MAX_OUTPUT_BYTES
from collectors.probe import is_probe
from simulator.behaviour import Fault, PowerShellError, ScriptResult, Timing

FIXTURES = Path(__file__).parent / "fixtures"
WATCHED = ("NHS *", "*Oberthur*", "*IDEMIA*", "*Authentic*Web*Pack*")
PROBE_FAILURE = "Cannot index into a null array."


def like(name: str, pattern: str) -> bool:
    """PowerShell's case-insensitive -like for the `*` and `?` the watched patterns use."""
    return fnmatch.fnmatchcase(name.casefold(), pattern.casefold())


def answer(patterns: list[str], fixture: str = "compliant-win10.json") -> str:
    """The probe's document for a host described by a fixture, filtered as the probe filters."""
    document: dict[str, Any] = json.loads((FIXTURES / fixture).read_text(encoding="utf-8"))
    document["probe"]["patterns"] = patterns
    if patterns:
        document["products"] = [
            p for p in document["products"] if any(like(p["name"], q) for q in patterns)
        ]
    return json.dumps(document, separators=(",", ":"))


def scripted(script: str, parameters: Mapping[str, object], fault: Fault | None) -> ScriptResult:
    """What running `script` gives on a host with `fault`."""
    if not is_probe(script):
        return ScriptResult(
            error=PowerShellError(
                message="The term 'x' is not recognized as the name of a cmdlet.",
                category="ObjectNotFound",
                fully_qualified_error_id="CommandNotFoundException",
            )
        )
    raw = parameters.get("Patterns") or []
    patterns = [str(p) for p in raw] if isinstance(raw, list | tuple) else [str(raw)]
    if fault is Fault.MALFORMED_OUTPUT:
        return ScriptResult(output='{"schema_version":1,"probe":{"marker":"cmscan-probe",')
    if fault is Fault.OVERSIZED_OUTPUT:
        return ScriptResult(output="[" + "0," * MAX_OUTPUT_BYTES + "0]")
    if fault is Fault.PROBE_EXCEPTION:
        return ScriptResult(
            error=PowerShellError(
                message=PROBE_FAILURE,
                category="InvalidOperation",
                fully_qualified_error_id="NullArray",
            )
        )
    return ScriptResult(output=answer(patterns))


@dataclass
class FixtureHost:
    """A SimulatedHost answering with fixture facts; `fault` and `delay` are set per test."""

    name: str = "gp-a81001-ws01.example.nhs.uk"
    fault_mode: Fault | None = None
    delay: float = 0.0  # seconds added to each step
    script_s: float = 0.0  # seconds the probe itself runs
    runs: int = 0

    @property
    def hostname(self) -> str:
        return self.name

    @property
    def fault(self) -> Fault | None:
        return self.fault_mode

    def timing(self) -> Timing:
        slow = 4.0 if self.fault_mode is Fault.SLOW else 1.0
        step = self.delay * slow
        return Timing(round_trip=step / 4, runspace_open=step, script_run=step + self.script_s)

    def run_script(self, script: str, parameters: Mapping[str, object]) -> ScriptResult:
        self.runs += 1
        return scripted(script, parameters, self.fault_mode)
