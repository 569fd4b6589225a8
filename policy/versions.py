"""Windows four-part versions (1.4.2.0), compared numerically, and version requirements."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

# Windows file and product versions have four 16-bit parts, but DisplayVersion is free text
# that vendors fill as they like (2024.1.15, 10.0.19045.1); accept up to nine digits a part.
_VERSION = re.compile(r"([0-9]{1,9})(?:\.([0-9]{1,9})){0,3}")
# Longer than any real DisplayVersion: stops hostile strings before any regex runs.
_MAX_TEXT = 64


class VersionError(ValueError):
    """A string is not a Windows version; the message quotes it."""


class WindowsVersion(NamedTuple):
    """major.minor.build.revision; missing parts are 0, so 1.4.2 == 1.4.2.0 and 1.10 > 1.9."""

    major: int
    minor: int = 0
    build: int = 0
    revision: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.build}.{self.revision}"


@functools.lru_cache(maxsize=4096)
def parse_version(text: str) -> WindowsVersion:
    """Parse '1.4.2.0', '1.4.2', '1.4' or '5' (surrounding spaces allowed), or raise VersionError.

    Cached: a fleet reports the same few DisplayVersion strings over and over.
    """
    if not isinstance(text, str):
        raise VersionError(f"{text!r} is not a version string")
    stripped = text.strip()
    if len(stripped) > _MAX_TEXT or _VERSION.fullmatch(stripped) is None:
        shown = stripped if len(stripped) <= _MAX_TEXT else stripped[:_MAX_TEXT] + "…"
        raise VersionError(f"{shown!r} is not a Windows version")
    parts = [int(part) for part in stripped.split(".")]
    return WindowsVersion(*parts)


def try_parse_version(text: str | None) -> WindowsVersion | None:
    """The version, or None when `text` is missing or junk."""
    if text is None:
        return None
    try:
        return parse_version(text)
    except VersionError:
        return None


_OPERATORS: dict[str, Callable[[WindowsVersion, WindowsVersion], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
# What to print when a comparison fails: 1.3.1.0 fails ">= 1.4.2.0" because 1.3.1.0 < 1.4.2.0.
NEGATED = {">=": "<", ">": "<=", "<=": ">", "<": ">=", "==": "!=", "!=": "=="}
_CLAUSE = re.compile(r"\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*")


@dataclass(frozen=True, slots=True)
class Clause:
    """One comparison such as `>= 1.4.2.0`; `text` keeps the threshold as the policy wrote it."""

    op: str
    threshold: WindowsVersion
    text: str

    def holds(self, version: WindowsVersion) -> bool:
        return _OPERATORS[self.op](version, self.threshold)


@dataclass(frozen=True, slots=True)
class VersionRequirement:
    """Comparisons that must all hold, written like `>= 1.4.2.0` or `>= 1.0, < 2.0`."""

    clauses: tuple[Clause, ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> VersionRequirement:
        """Parse a requirement or raise VersionError saying which part is wrong."""
        clauses = []
        for raw in text.split(","):
            match = _CLAUSE.fullmatch(raw)
            if match is None:
                raise VersionError(
                    f"{raw.strip()!r} is not a version comparison; write e.g. '>= 1.4.2.0'"
                    " or a range '>= 1.0, < 2.0'"
                )
            clauses.append(Clause(match[1], parse_version(match[2]), match[2]))
        return cls(tuple(clauses), ", ".join(f"{c.op} {c.text}" for c in clauses))

    def first_failure(self, version: WindowsVersion) -> Clause | None:
        """The first clause `version` breaks, or None when it meets them all."""
        for clause in self.clauses:
            if not _OPERATORS[clause.op](version, clause.threshold):
                return clause
        return None

    def __str__(self) -> str:
        return self.text
