"""Rule-by-rule account of a policy on one host's facts, for `cmscan policy explain`."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from collectors.facts import Facts
from policy.compiled import Policy, Rule
from policy.verdict import one_line

Outcome = Literal["pass", "fail", "not applicable", "waived"]


@dataclass(frozen=True, slots=True)
class RuleResult:
    """How one rule went: `observed` is what the rule looked at; `applies` why it applied."""

    rule: Rule
    outcome: Outcome
    observed: str
    applies: str | None = None


def explain(policy: Policy, facts: Facts, *, waived: Collection[str] = ()) -> list[RuleResult]:
    """Every rule of `policy`, in order, with its outcome on `facts` and the facts it saw."""
    results = []
    for rule in policy.rules:
        applies = one_line(rule.when.explain(facts)) if rule.when is not None else None
        if rule.when is not None and not rule.when.test(facts):
            results.append(RuleResult(rule, "not applicable", applies or ""))
            continue
        passed = rule.check.test(facts)
        outcome: Outcome = "pass" if passed else "waived" if rule.id in waived else "fail"
        results.append(RuleResult(rule, outcome, one_line(rule.check.explain(facts)), applies))
    return results
