"""Summarising py-spy's collapsed stacks into where the scanner's GIL time went."""

from __future__ import annotations

import pytest

from bench.sweep_profile import package, summarise

RAW = [
    "thread (0x1): MainThread;run (scanner/cli/common.py:76);"
    "evaluate (scanner/policy/evaluate.py:24) 30",
    "_probe (collectors/winrm.py:380);pack (pypsrp/wsman.py:715) 50",
    "process 9:python;_probe (collectors/winrm.py:380);"
    "update (/x/site-packages/spnego/_ntlm_raw/crypto.py:60) 20",
    "not a stack line",
]


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("pack (pypsrp/wsman.py:715)", "pypsrp"),
        ("update (/v/lib/python3.11/site-packages/spnego/_ntlm_raw/crypto.py:60)", "spnego"),
        ("select (selectors.py:468)", "standard library (selectors)"),
        ("_run_once (asyncio/base_events.py:1922)", "standard library (asyncio)"),
        (
            "_find (<frozen importlib._bootstrap>:1)",
            "standard library (<frozen importlib._bootstrap>)",
        ),
    ],
)
def test_frames_are_grouped_by_package(frame: str, expected: str) -> None:
    assert package(frame) == expected


def test_a_profile_says_where_the_gil_went() -> None:
    profile = summarise("cmscan, 5,000 hosts", RAW, seconds=10.0, rate=20)
    assert profile.samples == 100
    assert profile.gil_share == 0.5
    assert profile.by_package == [("pypsrp", 50), ("scanner", 30), ("spnego", 20)]
    assert profile.by_function[0] == ("pack (pypsrp/wsman.py:715)", 50)
    assert ("_probe (collectors/winrm.py:380)", 70) in profile.by_caller
    text = profile.text()
    assert text.startswith("cmscan, 5,000 hosts: 100 samples with the GIL held in 10.0 s at 20 Hz")
    assert "the GIL was held 50% of the time" in text
    assert "   50.0%  pypsrp" in text


def test_an_empty_profile_is_not_an_error() -> None:
    profile = summarise("nothing", [], seconds=0.0, rate=20)
    assert profile.samples == 0
    assert profile.gil_share == 0.0
    assert "0 samples" in profile.text()
