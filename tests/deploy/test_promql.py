"""The alert-expression reader the live Prometheus test relies on."""

from __future__ import annotations

import pytest

from tests.deploy.assets import alert_rules
from tests.deploy.promql import operands


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('up{job="cmscan"} == 0', ['up{job="cmscan"}', "0"]),
        ('absent(up{job="cmscan"})', ['up{job="cmscan"}']),
        ("time() - (x > 0) > 6 * 3600", ["time() - (x > 0)", "6 * 3600"]),
        (
            "(a < max_over_time(a[1d]) - 0.05) and on (ccg) (b - min_over_time(b[1d]) >= 3)",
            ["a", "max_over_time(a[1d]) - 0.05", "b - min_over_time(b[1d])", "3"],
        ),
        ('x{s=~"a|b", t!="c>d"} != bool 1', ['x{s=~"a|b", t!="c>d"}', "1"]),
        ("x or ignoring (i) group_left y", ["x", "y"]),
        ("sum by (ordinal) (x) > 0", ["sum by (ordinal) (x)", "0"]),
        ("max by (profile) (x)", ["max by (profile) (x)"]),
    ],
)
def test_operands_of_an_expression(expr: str, expected: list[str]) -> None:
    assert operands(expr) == expected


def test_unbalanced_expressions_are_refused() -> None:
    with pytest.raises(ValueError, match="unbalanced"):
        operands("sum(x > 1")


def test_every_alert_splits_into_at_least_one_series_operand() -> None:
    for rule in alert_rules():
        leaves = operands(rule["expr"])
        assert any(any(c.isalpha() for c in leaf) for leaf in leaves), rule["alert"]
