"""Policy files: what loads, and every kind of mistake reported at its exact file:line:col."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from policy import PolicyError, default_policy, load_policy_file, load_policy_text
from policy.loader import MAX_BYTES, default_policy_text

HEAD = """\
format: 1
id: test-policy
title: Test policy
watch: ["NHS *"]
rules:
"""
RULE = """\
  - id: cm
    title: CM installed
    severity: required
    remediation: Install it.
    check:
      product: {name: "NHS Credential Management*"}
"""


def problems(text: str, name: str = "p.yaml") -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(textwrap.dedent(text), name)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def test_a_minimal_policy_loads() -> None:
    policy = load_policy_text(HEAD + RULE, "p.yaml")
    assert (policy.id, policy.title, policy.rule_ids) == ("test-policy", "Test policy", ["cm"])
    assert policy.watched_patterns == ("NHS *",)
    assert policy.content_hash == hashlib.sha256((HEAD + RULE).encode()).hexdigest()
    assert policy.label == f"test-policy@{policy.content_hash[:8]}"


def test_the_default_policy_is_shipped_as_package_data() -> None:
    policy = default_policy()
    assert policy.source == default_policy_text()
    assert policy.content_hash == hashlib.sha256(policy.source.encode()).hexdigest()
    assert default_policy() is policy  # compiled once


def test_a_file_loads_like_its_text(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + RULE, encoding="utf-8")
    assert load_policy_file(path).content_hash == load_policy_text(HEAD + RULE).content_hash


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            HEAD.replace("format: 1", "format: 2") + RULE,
            ["p.yaml:1:9: format: unsupported policy format 2 (this cmscan reads format 1)"],
            id="unknown format",
        ),
        pytest.param(
            HEAD.replace("format: 1", 'format: "1"') + RULE,
            ["p.yaml:1:9: format: unsupported policy format '1' (this cmscan reads format 1)"],
            id="format as text",
        ),
        pytest.param(
            HEAD.replace("format: 1\n", "") + RULE,
            ["p.yaml:1:1: missing required key 'format' (this cmscan reads format 1)"],
            id="no format",
        ),
        pytest.param(
            HEAD.replace("title: Test policy\n", "title: Test policy\ncolour: blue\n") + RULE,
            ["p.yaml:4:1: unknown key 'colour'"],
            id="unknown top-level key",
        ),
        pytest.param(
            HEAD
            + RULE.replace("    severity: required\n", "    severity: required\n    sevrity: x\n"),
            ["p.yaml:9:5: rules[0]: unknown key 'sevrity'"],
            id="unknown rule key",
        ),
        pytest.param(
            HEAD + RULE.replace("severity: required", "severity: mandatory"),
            ["p.yaml:8:15: rules[0].severity: Input should be 'required' or 'advisory'"],
            id="unknown severity",
        ),
        pytest.param(
            HEAD + RULE.replace("title: CM installed", "title: 5"),
            ["p.yaml:7:12: rules[0].title: Input should be a valid string, not a number"],
            id="wrong type",
        ),
        pytest.param(
            HEAD + RULE.replace("    remediation: Install it.\n", ""),
            ["p.yaml:6:5: rules[0]: missing required key 'remediation'"],
            id="missing key",
        ),
        pytest.param(
            HEAD + RULE.replace("id: cm", "id: CM Installed"),
            ["p.yaml:6:9: rules[0].id: String should match pattern '^[a-z0-9][a-z0-9._-]{0,99}$'"],
            id="bad rule id",
        ),
        pytest.param(
            HEAD + RULE + RULE,
            ["p.yaml:12:9: rules[1].id: duplicate rule id 'cm' (first defined at p.yaml:6:9)"],
            id="duplicate rule id",
        ),
        pytest.param(
            HEAD + "  []\n",
            ["p.yaml:6:3: rules: List should have at least 1 item after validation, not 0"],
            id="empty rule list",
        ),
        pytest.param(
            HEAD.replace("rules:\n", ""),
            ["p.yaml:1:1: missing required key 'rules'"],
            id="no rules",
        ),
        pytest.param(
            HEAD.replace('watch: ["NHS *"]', "watch: 5") + RULE,
            ["p.yaml:4:8: watch: Input should be a valid list, not a number"],
            id="watch not a list",
        ),
        pytest.param(
            HEAD.replace('watch: ["NHS *"]', 'watch: ["NHS [x"]') + RULE,
            ["p.yaml:4:8: watch: invalid wildcard: 'NHS [x' has an unclosed or empty [...] set"],
            id="bad watched wildcard",
        ),
        pytest.param(
            HEAD + RULE.replace("product: {name", "produkt: {name"),
            [
                "p.yaml:11:7: rules[0].check: unknown condition 'produkt'; expected one of:"
                " product, dotnet_release, service, smartcard_reader, card_type, pending_reboot,"
                " cm_listening, browser_cookies, all_of, any_of, not"
            ],
            id="unknown condition",
        ),
        pytest.param(
            HEAD + RULE + "      pending_reboot: false\n",
            [
                "p.yaml:11:7: rules[0].check: a condition has exactly one key"
                " (found: product, pending_reboot); use all_of/any_of"
            ],
            id="two conditions in one",
        ),
        pytest.param(
            HEAD + RULE.replace('product: {name: "NHS Credential Management*"}', "- x"),
            [
                "p.yaml:11:7: rules[0].check: a condition is a mapping with one key, one of:"
                " product, dotnet_release, service, smartcard_reader, card_type, pending_reboot,"
                " cm_listening, browser_cookies, all_of, any_of, not"
            ],
            id="condition not a mapping",
        ),
        pytest.param(
            HEAD
            + RULE.replace('{name: "NHS Credential Management*"}', '{name: "(", match: regex}'),
            [
                "p.yaml:11:23: rules[0].check.product.name: invalid regular expression '(':"
                " missing ), unterminated subpattern at position 0"
            ],
            id="bad regex",
        ),
        pytest.param(
            HEAD + RULE.replace('{name: "NHS Credential Management*"}', '{name: "NHS [z-a]"}'),
            [
                "p.yaml:11:23: rules[0].check.product.name: invalid wildcard:"
                " 'NHS [z-a]' has a backwards range z-a"
            ],
            id="bad glob",
        ),
        pytest.param(
            HEAD + RULE.replace('{name: "NHS Credential Management*"}', "{name: x, match: re}"),
            ["p.yaml:11:33: rules[0].check.product.match: Input should be 'glob' or 'regex'"],
            id="bad match mode",
        ),
        pytest.param(
            HEAD
            + RULE.replace('{name: "NHS Credential Management*"}', '{name: x, version: "1.4"}'),
            [
                "p.yaml:11:35: rules[0].check.product.version: '1.4' is not a version"
                " comparison; write e.g. '>= 1.4.2.0' or a range '>= 1.0, < 2.0'"
            ],
            id="version without operator",
        ),
        pytest.param(
            HEAD
            + RULE.replace('{name: "NHS Credential Management*"}', '{name: x, version: ">= 1.x"}'),
            ["p.yaml:11:35: rules[0].check.product.version: '1.x' is not a Windows version"],
            id="bad version",
        ),
        pytest.param(
            HEAD + RULE.replace('product: {name: "NHS Credential Management*"}', "not: []"),
            [
                "p.yaml:11:12: rules[0].check.not: a condition is a mapping with one key, one of:"
                " product, dotnet_release, service, smartcard_reader, card_type, pending_reboot,"
                " cm_listening, browser_cookies, all_of, any_of, not"
            ],
            id="not of a list",
        ),
        pytest.param(
            HEAD
            + RULE.replace(
                'product: {name: "NHS Credential Management*"}',
                "all_of:\n        - pending_reboot: false\n        - dotnet_release: 528040",
            ),
            [
                "p.yaml:13:27: rules[0].check.all_of[1].dotnet_release:"
                " Input should be a valid string, not a number"
            ],
            id="nested wrong type",
        ),
        pytest.param(
            HEAD
            + RULE.replace(
                'product: {name: "NHS Credential Management*"}', 'dotnet_release: "at least 4.8"'
            ),
            [
                "p.yaml:11:23: rules[0].check.dotnet_release: 'at least 4.8' is not a release"
                " comparison; write e.g. '>= 528040'"
            ],
            id="bad dotnet comparison",
        ),
        pytest.param(
            HEAD
            + RULE.replace(
                'product: {name: "NHS Credential Management*"}',
                "service: {name: SCardSvr, start_typ: Disabled}",
            ),
            ["p.yaml:11:33: rules[0].check.service: unknown key 'start_typ'"],
            id="unknown service key",
        ),
        pytest.param(
            HEAD
            + RULE.replace(
                'product: {name: "NHS Credential Management*"}',
                "browser_cookies: {url: localhost, browsers: [firefox]}",
            ),
            [
                "p.yaml:11:30: rules[0].check.browser_cookies.url: 'localhost' is not an absolute"
                " URL such as https://localhost:43485",
                "p.yaml:11:52: rules[0].check.browser_cookies.browsers[0]:"
                " Input should be 'chrome' or 'edge'",
            ],
            id="bad browser check",
        ),
        pytest.param(
            HEAD
            + RULE.replace(
                'product: {name: "NHS Credential Management*"}',
                'browser_cookies: {url: "https://localhost:99999"}',
            ),
            [
                "p.yaml:11:30: rules[0].check.browser_cookies.url: 'https://localhost:99999' is"
                " not an absolute URL such as https://localhost:43485",
            ],
            id="port out of range",
        ),
        pytest.param(
            HEAD
            + RULE.replace("    check:\n", "    when: {smartcard_reader: maybe}\n    check:\n"),
            [
                "p.yaml:10:30: rules[0].when.smartcard_reader:"
                " Input should be a valid boolean, not text"
            ],
            id="bad when",
        ),
    ],
)
def test_mistakes_are_located(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    text = (
        HEAD.replace("title: Test policy\n", "title: Test policy\nextra: 1\n")
        + RULE.replace("severity: required", "severity: x")
        + RULE.replace("title: CM installed", "title: []")
    )
    found = problems(text)
    assert [p.split(": ", 1)[0] for p in found] == [
        "p.yaml:4:1",
        "p.yaml:9:15",
        "p.yaml:13:9",
        "p.yaml:14:12",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "p.yaml:1:1: a policy is a mapping with keys format, id, title, watch, rules"),
        (
            "- 1\n- 2\n",
            "p.yaml:1:1: a policy is a mapping with keys format, id, title, watch, rules",
        ),
        ("format: 1\nformat: 1\n", "p.yaml:2:1: duplicate key 'format'"),
        ("format: [1\n", "p.yaml:2:1: expected ',' or ']', but got '<stream end>'"),
        ("format: 1\n  id: x\n", "p.yaml:2:5: mapping values are not allowed here"),
        (
            "format: 1\nid: 2024-02-30\n",
            "p.yaml:2:5: cannot read '2024-02-30': day is out of range for month",
        ),
        (
            "a: &a [1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            + "".join(
                f"c{i}: &c{i} [" + ", ".join([f"*{'b' if i == 0 else f'c{i - 1}'}"] * 9) + "]\n"
                for i in range(8)
            ),
            "p.yaml:1:1: the document expands to more than 100000 values",
        ),
        ("a: " + "[" * 60 + "]" * 60 + "\n", "p.yaml:1:1: nesting deeper than 40 levels"),
        ("a: " + "{b: " * 5000 + "1" + "}" * 5000 + "\n", "p.yaml:1:1: nesting too deep"),
    ],
    ids=[
        "empty",
        "a list",
        "duplicate key",
        "syntax",
        "indentation",
        "impossible date",
        "alias bomb",
        "deep",
        "deeper than the parser",
    ],
)
def test_unusable_documents(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_a_recursive_alias_is_refused() -> None:
    found = problems("format: 1\nid: &a [*a]\n")
    assert len(found) == 1
    assert found[0].startswith("p.yaml:")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"missing\.yaml: no such file"):
        load_policy_file(tmp_path / "missing.yaml")
    with pytest.raises(PolicyError, match="is a directory"):
        load_policy_file(tmp_path)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"format: 1\n\xff\xfe")
    with pytest.raises(PolicyError, match=r"binary\.yaml: not UTF-8 text \(byte 10\)"):
        load_policy_file(binary)
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * (MAX_BYTES + 1))
    with pytest.raises(PolicyError, match=r"huge\.yaml:1:1: larger than 1024 KiB"):
        load_policy_file(huge)


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + (HEAD + RULE).encode())
    assert load_policy_file(path).id == "test-policy"
