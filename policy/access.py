"""The dashboard access rule: which smartcard activity codes open it, and what each implies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AccessRule:
    """A policy's `access:` section, compiled. A user may open the dashboard for a practice
    when the codes they hold there, with everything those imply, include one of `grants`."""

    title: str
    grants: frozenset[str]
    implies: Mapping[str, frozenset[str]]

    @classmethod
    def build(
        cls, *, title: str, grants: Iterable[str], implies: Mapping[str, Iterable[str]]
    ) -> AccessRule:
        return cls(
            title=title,
            grants=frozenset(grants),
            implies={code: frozenset(more) for code, more in implies.items()},
        )

    def effective(self, codes: Iterable[str]) -> frozenset[str]:
        """The codes held and every code they imply, however many steps away."""
        found = set(codes)
        pending = list(found)
        while pending:
            for implied in self.implies.get(pending.pop(), ()):
                if implied not in found:
                    found.add(implied)
                    pending.append(implied)
        return frozenset(found)

    def opens(self, codes: Iterable[str]) -> bool:
        return not self.grants.isdisjoint(self.effective(codes))

    @property
    def granting_codes(self) -> list[str]:
        """Every code that alone would grant access (a granting code, or one implying it),
        sorted: what an export tells the RA to add."""
        return sorted(code for code in self.grants | set(self.implies) if self.opens((code,)))
