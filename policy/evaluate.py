"""Evaluation: a compiled policy applied to one host's facts gives its verdict."""

from __future__ import annotations

from collections.abc import Collection

from collectors.facts import Facts
from policy.compiled import Policy
from policy.verdict import RuleFinding, Verdict, one_line


def evaluate(policy: Policy, facts: Facts, *, waived: Collection[str] = ()) -> Verdict:
    """Grade `facts`; rules in `waived` that fail are reported as waived instead of failing.

    Pure and cheap: conditions were compiled when the policy was loaded, and reasons are only
    worded for rules that fail.
    """
    failing: list[RuleFinding] = []
    advisories: list[RuleFinding] = []
    excused: list[RuleFinding] = []
    for rule in policy.rules:
        if rule.when is not None and not rule.when.test(facts):
            continue
        if rule.check.test(facts):
            continue
        finding = RuleFinding(
            rule.id,
            rule.title,
            rule.severity,
            one_line(rule.check.explain(facts)),
            rule.remediation,
        )
        if waived and rule.id in waived:
            excused.append(finding)
        elif rule.severity == "required":
            failing.append(finding)
        else:
            advisories.append(finding)
    return Verdict(
        policy_id=policy.id,
        policy_hash=policy.content_hash,
        failing=tuple(failing),
        advisories=tuple(advisories),
        waived=tuple(excused),
    )
