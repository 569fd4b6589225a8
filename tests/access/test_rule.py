"""The access rule lives in the policy: the baseline's, implied codes, and bad sections."""

from __future__ import annotations

import typing

import pytest

from config.settings import AccessColumn
from inventory.cim_users import COLUMN_KEYS
from policy import PolicyError, default_policy, load_policy_text
from policy.access import AccessRule
from policy.access_in_force import rule_in_use


def test_the_baseline_ships_the_rule_of_the_dashboards_guide() -> None:
    rule = default_policy().access
    assert rule is not None
    assert rule.granting_codes == ["B0258", "B0360", "B0560", "B0945"]
    assert rule.effective({"B0360"}) == {"B0360", "B8006"}
    assert rule.opens({"B0945", "B0264"})
    assert not rule.opens({"B8006"})  # implied by B0360; it grants nothing by itself
    assert not rule.opens(set())


def test_an_implied_code_named_as_granting_admits_holders_of_what_implies_it() -> None:
    rule = AccessRule.build(
        title="t", grants=["B8006"], implies={"B0360": ["B0361"], "B0361": ["B8006"]}
    )
    assert rule.opens({"B0360"})  # two steps away
    assert rule.granting_codes == ["B0360", "B0361", "B8006"]
    looped = AccessRule.build(
        title="t", grants=["B0001"], implies={"B0002": ["B0003"], "B0003": ["B0002"]}
    )
    assert not looped.opens({"B0002"})  # a cycle ends


def _with_access(section: str) -> str:
    source = default_policy().source
    return source[: source.index("access:")] + section


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("access:\n  grants: [b0360]\n", "'b0360' is not an activity code"),
        ("access:\n  grants: []\n", "at least 1 item"),
        ("access:\n  grants: [B0360]\n  implies: {B0360: [X1]}\n", "'X1' is not an activity code"),
        ("access:\n  grant: [B0360]\n", "unknown key 'grant'"),
    ],
)
def test_a_bad_access_section_is_refused_with_its_place(section: str, expected: str) -> None:
    text = _with_access(section)
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "mine.yaml")
    start = text[: text.index("access:")].count("\n") + 1
    (problem,) = (p for p in caught.value.problems if expected in p)
    assert int(problem.split(":")[1]) >= start, problem  # placed in the access section


def test_a_policy_without_a_section_uses_the_baselines_rule_and_says_so() -> None:
    source = default_policy().source
    mine = load_policy_text(
        source[: source.index("access:")].replace("id: nhs-cis-baseline", "id: mine")
    )
    assert mine.access is None
    used = rule_in_use(mine)
    assert used.fallback
    assert used.rule == default_policy().access
    assert used.policy.startswith("nhs-cis-baseline@")
    assert not rule_in_use(default_policy()).fallback


def test_the_settings_name_the_columns_the_reader_knows() -> None:
    assert set(typing.get_args(AccessColumn)) == set(COLUMN_KEYS)
