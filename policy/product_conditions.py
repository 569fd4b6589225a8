"""Conditions on installed products: which ones a name selects, and whether their versions pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collectors.facts import Facts, Product
from policy.name_patterns import Matcher
from policy.versions import NEGATED, VersionRequirement, try_parse_version


class ProductSelector:
    """The installed products a name (and publisher) selects.

    Several rules select the same products (Credential Management appears in five places of
    the baseline), so one selector is shared by all of them and remembers its answer for the
    facts it saw last: evaluating a host asks it several times in a row.
    """

    __slots__ = ("_last", "name", "publisher")

    def __init__(self, name: Matcher, publisher: Matcher | None) -> None:
        self.name = name
        self.publisher = publisher
        # (facts, products) in one attribute, so a reader in another thread never pairs one
        # host's facts with another host's products.
        self._last: tuple[Facts, tuple[Product, ...]] | None = None

    def __call__(self, facts: Facts) -> tuple[Product, ...]:
        last = self._last
        if last is not None and last[0] is facts:
            return last[1]
        name, publisher = self.name, self.publisher
        found = tuple(
            p
            for p in facts.products
            if name(p.name) and (publisher is None or publisher(p.publisher))
        )
        self._last = (facts, found)
        return found


def _shown(products: Sequence[Product]) -> str:
    seen: dict[str, None] = {}  # the x64 and x86 views often list the same product twice
    for product in products:
        version = (product.version or "").strip()
        seen[f"{product.name} {version}".strip()] = None
    return ", ".join(seen)


@dataclass(frozen=True, slots=True)
class ProductCondition:
    """Products matching name (and publisher) are installed and every one meets `requirement`."""

    matches: ProductSelector
    requirement: VersionRequirement | None
    label: str | None

    def test(self, facts: Facts) -> bool:
        found = self.matches(facts)
        if not found:
            return False
        requirement = self.requirement
        if requirement is None:
            return True
        for product in found:
            version = try_parse_version(product.version)
            if version is None or requirement.first_failure(version) is not None:
                return False
        return True

    def _missing(self) -> str:
        if self.label:
            return f"{self.label} not installed"
        publisher = self.matches.publisher
        by = f" by publisher {publisher}" if publisher else ""
        return f"no product matching {self.matches.name}{by} installed"

    def explain(self, facts: Facts) -> str:
        found = self.matches(facts)
        if not found:
            return self._missing()
        requirement = self.requirement
        if requirement is None:
            return f"{_shown(found)} installed"
        for product in found:
            raw = product.version.strip() if product.version is not None else None
            version = try_parse_version(raw)
            if raw is None or raw == "":
                return f"{product.name} has no version"
            if version is None:
                return f"{product.name} version {raw[:40]!r} is not a Windows version"
            clause = requirement.first_failure(version)
            if clause is not None:
                return f"{product.name} {raw} {NEGATED[clause.op]} {clause.text}"
        return f"{_shown(found)} {requirement}"
