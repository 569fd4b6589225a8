"""Compiled conditions: what one is, how they combine, and compiling them from a policy file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from collectors.facts import Facts
from policy import schema
from policy.browser_conditions import CookiesCondition
from policy.machine_conditions import (
    CardTypeCondition,
    DotnetCondition,
    ListeningCondition,
    PendingRebootCondition,
    ReaderCondition,
    ServiceCondition,
)
from policy.name_patterns import Matcher
from policy.product_conditions import ProductCondition, ProductSelector
from policy.versions import VersionRequirement


# Each kind of condition (in product_conditions, machine_conditions and browser_conditions)
# satisfies this protocol by its shape alone, so those modules never import this one and the
# compiler below can import them all without a circle.
class Condition(Protocol):
    def test(self, facts: Facts) -> bool:
        """Whether the condition holds; must never raise on any Facts."""
        ...

    def explain(self, facts: Facts) -> str:
        """What was observed, in one line, agreeing with `test`."""
        ...


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Condition, ...]

    def test(self, facts: Facts) -> bool:
        return all(part.test(facts) for part in self.parts)

    def explain(self, facts: Facts) -> str:
        failed = next((part for part in self.parts if not part.test(facts)), None)
        if failed is not None:
            return failed.explain(facts)
        return "; ".join(part.explain(facts) for part in self.parts)


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Condition, ...]

    def test(self, facts: Facts) -> bool:
        return any(part.test(facts) for part in self.parts)

    def explain(self, facts: Facts) -> str:
        passed = next((part for part in self.parts if part.test(facts)), None)
        if passed is not None:
            return passed.explain(facts)
        reasons = dict.fromkeys(part.explain(facts) for part in self.parts)
        return "; ".join(reasons)


@dataclass(frozen=True, slots=True)
class Not:
    part: Condition

    def test(self, facts: Facts) -> bool:
        return not self.part.test(facts)

    def explain(self, facts: Facts) -> str:
        # The inner observation already says what is (or is not) there: "NHS Identity Hub
        # 1.2.0.0 installed" explains why `not: product` failed.
        return self.part.explain(facts)


Selectors = dict[tuple[str, tuple[str, ...], tuple[str, ...] | None], ProductSelector]


# Start types and states compare regardless of case: fold the sets once, at load, not per test.
def _folded(words: Sequence[str] | None) -> frozenset[str] | None:
    return None if words is None else frozenset(w.casefold() for w in words)


def compile_condition(spec: schema.Condition, selectors: Selectors | None = None) -> Condition:
    """Turn a validated condition into its compiled form (once per policy load); conditions
    compiled with the same `selectors` share the work of selecting the same products."""
    if selectors is None:
        selectors = {}
    if isinstance(spec, schema.Product):
        check = spec.product
        publishers = tuple(check.publisher) if check.publisher else None
        key = (check.match, tuple(check.name), publishers)
        selector = selectors.get(key)
        if selector is None:
            selector = selectors[key] = ProductSelector(
                Matcher(check.name, check.match),
                Matcher(publishers, check.match) if publishers else None,
            )
        return ProductCondition(
            selector,
            VersionRequirement.parse(check.version) if check.version else None,
            check.label,
        )
    if isinstance(spec, schema.DotnetRelease):
        op, release = schema.dotnet_comparison(spec.dotnet_release)
        return DotnetCondition(op, release)
    if isinstance(spec, schema.ServiceCondition):
        svc = spec.service
        shown = {
            "start_type": " or ".join(svc.start_type or ()),
            "state": " or ".join(svc.state or ()),
        }
        return ServiceCondition(
            svc.name,
            svc.present,
            _folded(svc.start_type),
            _folded(svc.start_type_not),
            _folded(svc.state),
            _folded(svc.state_not),
            shown,
        )
    if isinstance(spec, schema.SmartcardReader):
        return ReaderCondition(spec.smartcard_reader)
    if isinstance(spec, schema.CardType):
        card = spec.card_type
        return CardTypeCondition(
            Matcher(card.name, card.match),
            Matcher(card.minidriver, card.match) if card.minidriver else None,
        )
    if isinstance(spec, schema.PendingRebootCondition):
        return PendingRebootCondition(spec.pending_reboot)
    if isinstance(spec, schema.CmListening):
        return ListeningCondition(spec.cm_listening)
    if isinstance(spec, schema.BrowserCookies):
        return CookiesCondition.for_url(spec.browser_cookies.url, spec.browser_cookies.browsers)
    if isinstance(spec, schema.AllOf):
        return AllOf(tuple(compile_condition(part, selectors) for part in spec.all_of))
    if isinstance(spec, schema.AnyOf):
        return AnyOf(tuple(compile_condition(part, selectors) for part in spec.any_of))
    if isinstance(spec, schema.Not):
        return Not(compile_condition(spec.not_, selectors))
    raise TypeError(f"unknown condition {type(spec).__name__}")  # schema and compiler disagree
