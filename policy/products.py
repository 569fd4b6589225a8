"""Products by name: the NHS software exports give columns of their own, and watched names."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from collectors.wildcards import compile_wildcard


def matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """Whether a product name matches any of these PowerShell -like patterns."""
    compiled = [compile_wildcard(pattern) for pattern in patterns]
    return lambda name: any(m.match(name) is not None for m in compiled)


# The columns name these products; the policy decides what is acceptable about them.
is_credential_management = matcher(["NHS Credential Management*"])
is_identity_agent = matcher(["NHS Identity Agent*", "NHS Digital Identity Agent*"])
_oberthur_name = matcher(["*Oberthur*"])
_middleware_publisher = matcher(["IDEMIA*", "Oberthur*"])
_authentic_name = matcher(["*Authentic*"])


def is_smartcard_middleware(name: str, publisher: str) -> bool:
    """The Oberthur / IDEMIA middleware for series 8 cards, by name or by its publisher."""
    return _oberthur_name(name) or (_middleware_publisher(publisher) and _authentic_name(name))
