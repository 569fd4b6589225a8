"""A policy's verdict on one host's facts: status, failing rules, advisories and waived rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["required", "advisory"]
# Reasons quote what hosts report; a hostile or broken host must not be able to break a
# log line, a CSV row or a terminal table with newlines, control characters or sheer length.
REASON_LIMIT = 300


def one_line(text: str) -> str:
    """`text` with every run of whitespace or control characters as one space, cut to length."""
    if len(text) <= REASON_LIMIT and text.isprintable():  # nearly always: nothing to do
        return text
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    flat = " ".join(cleaned.split())
    return flat if len(flat) <= REASON_LIMIT else flat[: REASON_LIMIT - 1] + "…"


VerdictStatus = Literal["compliant", "noncompliant"]


@dataclass(frozen=True, slots=True)
class RuleFinding:
    """A rule that did not pass, with a one-line reason a person understands."""

    rule_id: str
    title: str
    severity: Severity
    reason: str
    remediation: str = ""

    def to_json(self) -> dict[str, str]:
        # Remediation text lives in the policy; copying it into every host's row would
        # multiply it by the fleet size.
        return {
            "rule": self.rule_id,
            "title": self.title,
            "severity": self.severity,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RuleFinding:
        severity: Severity = "advisory" if data.get("severity") == "advisory" else "required"
        return cls(
            rule_id=str(data.get("rule", "")),
            title=str(data.get("title", "")),
            severity=severity,
            reason=str(data.get("reason", "")),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """`failing` are failed required rules; `advisories` failed advisory rules; `waived` failed
    rules of either severity that a waiver excuses. Only `failing` makes a host noncompliant."""

    policy_id: str
    policy_hash: str
    failing: tuple[RuleFinding, ...] = ()
    advisories: tuple[RuleFinding, ...] = ()
    waived: tuple[RuleFinding, ...] = ()

    @property
    def status(self) -> VerdictStatus:
        return "noncompliant" if self.failing else "compliant"

    @property
    def failing_ids(self) -> list[str]:
        return [finding.rule_id for finding in self.failing]

    @property
    def advisory_ids(self) -> list[str]:
        return [finding.rule_id for finding in self.advisories]

    @property
    def waived_ids(self) -> list[str]:
        return [finding.rule_id for finding in self.waived]

    def to_json(self) -> dict[str, Any]:
        """The form stored in host_state.verdict and served by the API."""
        return {
            "policy_id": self.policy_id,
            "policy_hash": self.policy_hash,
            "status": self.status,
            "failing": [finding.to_json() for finding in self.failing],
            "advisories": [finding.to_json() for finding in self.advisories],
            "waived": [finding.to_json() for finding in self.waived],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        """Read back a stored verdict (remediation texts are not stored)."""

        def findings(key: str) -> tuple[RuleFinding, ...]:
            items = data.get(key) or []
            return tuple(RuleFinding.from_json(i) for i in items if isinstance(i, dict))

        return cls(
            policy_id=str(data.get("policy_id", "")),
            policy_hash=str(data.get("policy_hash", "")),
            failing=findings("failing"),
            advisories=findings("advisories"),
            waived=findings("waived"),
        )
