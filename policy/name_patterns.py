"""Name patterns shared by product and smart-card type conditions: globs or regexes."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from collectors.wildcards import translate


class Matcher:
    """Case-insensitive name patterns: globs (PowerShell -like) or regular expressions."""

    __slots__ = ("_first", "_tests", "patterns")

    def __init__(self, patterns: Sequence[str], mode: str) -> None:
        self.patterns = tuple(patterns)
        # A glob matches the whole name by PowerShell's -like rules, exactly as the probe
        # filters products; one alternation of the anchored translations is much faster than
        # one regex per pattern. Regular expressions are searched anywhere, as grep does, and
        # kept apart so that their groups stay their own.
        self._tests: tuple[Callable[[str], re.Match[str] | None], ...]
        if mode == "glob":
            joined = "|".join(translate(p) for p in patterns)
            self._tests = (re.compile(joined, re.IGNORECASE | re.DOTALL).match,)
        else:
            self._tests = tuple(re.compile(p, re.IGNORECASE).search for p in patterns)
        self._first = self._tests[0]

    def __call__(self, text: str | None) -> bool:
        if text is None:
            return False
        if len(self._tests) == 1:  # every glob matcher: skip the generator on the hot path
            return self._first(text) is not None
        return any(test(text) is not None for test in self._tests)

    def __str__(self) -> str:
        return " or ".join(repr(p) for p in self.patterns)
