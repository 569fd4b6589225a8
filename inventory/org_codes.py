"""NHS ODS organisation code shapes: practice, PCN, CCG / sub-ICB location, ICB, region."""

from __future__ import annotations

import re

# ODS code shapes: practice A81001, PCN U12345, CCG 00K (merged CCGs also got five-character
# codes such as D2P2L), ICB QHM, NHS England region Y63.
_SHAPES: dict[str, tuple[re.Pattern[str], str]] = {
    "practice": (re.compile(r"[A-Z][0-9]{5}"), "a letter and 5 digits, e.g. A81001"),
    "pcn": (re.compile(r"U[0-9]{5}"), "U and 5 digits, e.g. U12345"),
    "ccg": (
        re.compile(r"[0-9A-Z]{3}|[A-Z][0-9][A-Z][0-9][A-Z]"),
        "3 letters or digits, e.g. 00K or 15N (or a 5-character code such as D2P2L)",
    ),
    "icb": (re.compile(r"Q[0-9A-Z]{2}"), "Q and 2 letters or digits, e.g. QHM"),
    "region": (re.compile(r"Y[0-9]{2}"), "Y and 2 digits, e.g. Y63"),
}

KINDS = tuple(_SHAPES)
_DISPLAY = {"practice": "practice", "pcn": "PCN", "ccg": "CCG", "icb": "ICB", "region": "region"}


def normalise_code(kind: str, value: str) -> str:
    """The code trimmed and in upper case, or ValueError saying what shape it needs."""
    pattern, shape = _SHAPES[kind]
    code = value.strip().upper()
    if not pattern.fullmatch(code):
        raise ValueError(f"{value.strip()!r} is not a {_DISPLAY[kind]} code: expected {shape}")
    return code


def is_code(kind: str, value: str) -> bool:
    return _SHAPES[kind][0].fullmatch(value.strip().upper()) is not None
