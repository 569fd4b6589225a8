"""The access rule in force: the active policy's, else the one the shipped baseline has."""

from __future__ import annotations

from dataclasses import dataclass

from policy.access import AccessRule
from policy.compiled import Policy
from policy.loader import default_policy


@dataclass(frozen=True, slots=True)
class RuleInUse:
    """The access rule in force and the policy it comes from."""

    rule: AccessRule
    policy: str  # id@hash of the policy holding it
    fallback: bool  # the active policy has no `access:` section: the shipped baseline's rule


def rule_in_use(active: Policy) -> RuleInUse:
    """The active policy's access rule, else the shipped baseline's (a policy written before
    access rules existed still gets the seed's rule, and says so)."""
    if active.access is not None:
        return RuleInUse(active.access, active.label, fallback=False)
    baseline = default_policy()
    assert baseline.access is not None  # the shipped baseline has one; tests keep it so
    return RuleInUse(baseline.access, baseline.label, fallback=True)
