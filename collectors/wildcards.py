"""PowerShell wildcards (-like): the probe filters products with them; the policy and the
simulator match names with the same rules."""

from __future__ import annotations

import functools
import re


class WildcardError(ValueError):
    """A pattern PowerShell would refuse; the message quotes it."""


def translate(pattern: str) -> str:
    """The anchored regular expression for a -like pattern: `*` any run, `?` one character,
    `[abc]` or `[a-z]` one of a set, and a backtick escapes the next character."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "`" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif char == "*":
            out.append(".*")
            i += 1
        elif char == "?":
            out.append(".")
            i += 1
        elif char == "[":
            members, i = _set(pattern, i + 1)
            out.append(members)
        else:
            out.append(re.escape(char))
            i += 1
    return r"\A(?:" + "".join(out) + r")\Z"


def _set(pattern: str, i: int) -> tuple[str, int]:
    """A `[...]` set that starts after its `[`: its regex and the index after its `]`."""
    chars: list[str] = []
    n = len(pattern)
    while i < n and pattern[i] != "]":
        if pattern[i] == "`" and i + 1 < n:
            i += 1
        chars.append(pattern[i])
        i += 1
    if i >= n or not chars:
        raise WildcardError(f"{pattern!r} has an unclosed or empty [...] set")
    out: list[str] = []
    j = 0
    while j < len(chars):
        # As in PowerShell, a-z is a range only between two members; a dash at either end
        # stands for itself.
        if j + 2 < len(chars) and chars[j + 1] == "-":
            low, high = chars[j], chars[j + 2]
            if low > high:
                raise WildcardError(f"{pattern!r} has a backwards range {low}-{high}")
            out.append(f"{re.escape(low)}-{re.escape(high)}")
            j += 3
        else:
            out.append(re.escape(chars[j]))
            j += 1
    return "[" + "".join(out) + "]", i + 1


@functools.lru_cache(maxsize=512)
def compile_wildcard(pattern: str) -> re.Pattern[str]:
    """A case-insensitive compiled -like pattern, or WildcardError."""
    return re.compile(translate(pattern), re.IGNORECASE | re.DOTALL)


def like(text: str, pattern: str) -> bool:
    """`text -like pattern` as PowerShell evaluates it (case-insensitive)."""
    return compile_wildcard(pattern).match(text) is not None
