"""Windows four-part versions: numeric, part by part, tolerant of short forms and of junk."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.versions import (
    VersionError,
    VersionRequirement,
    WindowsVersion,
    parse_version,
    try_parse_version,
)

parts = st.integers(min_value=0, max_value=999_999_999)
versions = st.lists(parts, min_size=1, max_size=4).map(lambda p: ".".join(map(str, p)))


@given(versions)
def test_parsing_round_trips_through_the_four_part_form(text: str) -> None:
    version = parse_version(text)
    assert parse_version(str(version)) == version
    assert len(str(version).split(".")) == 4


@given(st.lists(parts, min_size=1, max_size=3))
def test_missing_parts_are_zero(numbers: list[int]) -> None:
    short = ".".join(map(str, numbers))
    padded = ".".join(map(str, numbers + [0] * (4 - len(numbers))))
    assert parse_version(short) == parse_version(padded)


@given(versions, versions, versions)
def test_the_order_is_total_and_transitive(a: str, b: str, c: str) -> None:
    x, y, z = parse_version(a), parse_version(b), parse_version(c)
    assert (x < y) + (x == y) + (x > y) == 1
    if x <= y and y <= z:
        assert x <= z


@given(st.lists(parts, min_size=4, max_size=4), st.lists(parts, min_size=4, max_size=4))
def test_the_order_is_numeric_part_by_part(a: list[int], b: list[int]) -> None:
    left = parse_version(".".join(map(str, a)))
    right = parse_version(".".join(map(str, b)))
    assert (left < right) == (a < b)


@given(st.text(max_size=80))
def test_junk_never_raises_anything_but_version_error(text: str) -> None:
    version = try_parse_version(text)
    if version is None:
        with pytest.raises(VersionError, match="is not a Windows version"):
            parse_version(text)
    else:
        assert isinstance(version, WindowsVersion)
        assert parse_version(text) == version


@pytest.mark.parametrize(
    ("smaller", "larger"),
    [
        ("1.9", "1.10"),
        ("1.4.2.0", "1.4.10.0"),
        ("2.4.9.0", "2.4.10.0"),
        ("1.3.1.0", "1.4.2.0"),
        ("4.1.0.0", "4.1.2"),
        ("9", "10"),
    ],
)
def test_numeric_not_lexical(smaller: str, larger: str) -> None:
    assert parse_version(smaller) < parse_version(larger)


@pytest.mark.parametrize("text", ["1.4.2", "1.4.2.0", " 1.4.2.0 ", "01.04.02.00", "1.4.2.0\n"])
def test_equal_forms(text: str) -> None:
    assert parse_version(text) == parse_version("1.4.2.0")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "latest",
        "1.4.2.0.1",
        "1..2",
        "1.2.",
        ".1",
        "-1.0",
        "v1.4",
        "1.4 beta",
        "1,4,2",
        "١.٢",  # Arabic-Indic digits: int() would take them, Windows would not
        "1" * 10,
        "9" * 5000,
    ],
)
def test_junk(text: str) -> None:
    with pytest.raises(VersionError, match="is not a Windows version"):
        parse_version(text)
    assert try_parse_version(text) is None


def test_missing_version_is_none() -> None:
    assert try_parse_version(None) is None


@pytest.mark.parametrize(
    ("requirement", "version", "holds"),
    [
        (">= 1.4.2.0", "1.4.2", True),
        (">= 1.4.2.0", "1.3.1.0", False),
        (">= 1.0, < 2.0", "1.4.2.0", True),
        (">= 1.0, < 2.0", "2.0.0.0", False),
        (">=1.0,<2", "1.99", True),
        ("> 3", "3.0.0.1", True),
        ("<= 3", "3.0.0.1", False),
        ("== 1.4.2", "1.4.2.0", True),
        ("!= 1.4.2", "1.4.2.0", False),
    ],
)
def test_requirements(requirement: str, version: str, holds: bool) -> None:
    parsed = VersionRequirement.parse(requirement)
    assert (parsed.first_failure(parse_version(version)) is None) is holds


def test_a_requirement_names_the_clause_that_failed() -> None:
    requirement = VersionRequirement.parse(">= 1.0, < 2.0")
    clause = requirement.first_failure(parse_version("2.1"))
    assert clause is not None
    assert (clause.op, clause.text) == ("<", "2.0")
    assert str(requirement) == ">= 1.0, < 2.0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.4.2.0", "'1.4.2.0' is not a version comparison"),
        (">= 1.x", "'1.x' is not a Windows version"),
        (">= 1.0,", "'' is not a version comparison"),
        ("=> 1.0", "'=> 1.0' is not a version comparison"),
    ],
)
def test_bad_requirements(text: str, message: str) -> None:
    with pytest.raises(VersionError, match=message):
        VersionRequirement.parse(text)
