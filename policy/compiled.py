"""A loaded policy: its identity, the product patterns it watches, and its compiled rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from policy.access import AccessRule
from policy.conditions import Condition
from policy.verdict import Severity


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled rule; `when` None means it applies to every host."""

    id: str
    title: str
    severity: Severity
    remediation: str
    check: Condition
    when: Condition | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated, compiled policy. `content_hash` is the sha256 of `source`, the file's text."""

    id: str
    title: str
    content_hash: str
    watched_patterns: tuple[str, ...]
    rules: tuple[Rule, ...]
    source: str = field(repr=False)
    description: str | None = None
    access: AccessRule | None = None  # who may open the dashboard, if the policy says

    @property
    def rule_ids(self) -> list[str]:
        return [rule.id for rule in self.rules]

    @property
    def short_hash(self) -> str:
        return self.content_hash[:8]

    @property
    def label(self) -> str:
        """id@hash8, as status-change reasons and logs name a policy."""
        return f"{self.id}@{self.short_hash}"

    def rule(self, rule_id: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.id == rule_id), None)
