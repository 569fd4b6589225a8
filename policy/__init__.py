"""The policy engine: policy files, their validation, and their verdict on a host's facts."""

from policy.compiled import Policy, Rule
from policy.evaluate import evaluate
from policy.explain import RuleResult, explain
from policy.loader import (
    PolicyError,
    default_policy,
    default_policy_text,
    load_policy_file,
    load_policy_text,
)
from policy.verdict import RuleFinding, Verdict

__all__ = [
    "Policy",
    "PolicyError",
    "Rule",
    "RuleFinding",
    "RuleResult",
    "Verdict",
    "default_policy",
    "default_policy_text",
    "evaluate",
    "explain",
    "load_policy_file",
    "load_policy_text",
]
