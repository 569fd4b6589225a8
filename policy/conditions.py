"""Compiled conditions: each answers `test(facts)` fast and `explain(facts)` in one line."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from collectors.facts import BrowserCookiePolicy, Facts, Product, SmartCardType
from collectors.wildcards import translate
from policy import schema
from policy.versions import NEGATED, VersionRequirement, try_parse_version

# .NET Framework 4.x Release values of the first build of each version (Microsoft's table),
# only to print a threshold the way people say it: 528040 is "4.8".
DOTNET_VERSIONS = {
    378389: "4.5",
    378675: "4.5.1",
    379893: "4.5.2",
    393295: "4.6",
    394254: "4.6.1",
    394802: "4.6.2",
    460798: "4.7",
    461308: "4.7.1",
    461808: "4.7.2",
    528040: "4.8",
    533320: "4.8.1",
}
_INT_OPS = {
    ">=": int.__ge__,
    ">": int.__gt__,
    "<=": int.__le__,
    "<": int.__lt__,
    "==": int.__eq__,
    "!=": int.__ne__,
}


class Condition(Protocol):
    def test(self, facts: Facts) -> bool:
        """Whether the condition holds; must never raise on any Facts."""
        ...

    def explain(self, facts: Facts) -> str:
        """What was observed, in one line, agreeing with `test`."""
        ...


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


def _dotnet_name(release: int) -> str:
    name = DOTNET_VERSIONS.get(release)
    return f" ({name})" if name else ""


@dataclass(frozen=True, slots=True)
class DotnetCondition:
    """The .NET Framework 4.x Release value compares as required."""

    op: str
    release: int

    def test(self, facts: Facts) -> bool:
        actual = facts.dotnet_release
        return actual is not None and _INT_OPS[self.op](actual, self.release)

    def explain(self, facts: Facts) -> str:
        actual = facts.dotnet_release
        if actual is None:
            return ".NET Framework 4.x not installed"
        op = self.op if self.test(facts) else NEGATED[self.op]
        return f".NET Framework release {actual} {op} {self.release}{_dotnet_name(self.release)}"


def _folded(words: Sequence[str] | None) -> frozenset[str] | None:
    return None if words is None else frozenset(w.casefold() for w in words)


@dataclass(frozen=True, slots=True)
class ServiceCondition:
    """A service exists (or not) with its start type and state in, or out of, given sets."""

    name: str
    present: bool
    start_type: frozenset[str] | None
    start_type_not: frozenset[str] | None
    state: frozenset[str] | None
    state_not: frozenset[str] | None
    # The sets as written, for messages.
    shown: dict[str, str]

    def _problem(self, facts: Facts) -> str | None:
        service = facts.service(self.name)
        if service is None:
            return f"{self.name} was not reported by the probe"
        if not self.present:
            return f"{self.name} is present" if service.present else None
        if not service.present:
            return f"{self.name} not present"
        for attribute, label, allowed, refused in (
            ("start_type", "start type", self.start_type, self.start_type_not),
            ("state", "state", self.state, self.state_not),
        ):
            if allowed is None and refused is None:
                continue
            value: str | None = getattr(service, attribute)
            if value is None:
                return f"{self.name} {label} unknown"
            folded = value.casefold()
            if refused is not None and folded in refused:
                return f"{self.name} {label} is {value}"
            if allowed is not None and folded not in allowed:
                return f"{self.name} {label} is {value} (expected {self.shown[attribute]})"
        return None

    def test(self, facts: Facts) -> bool:
        return self._problem(facts) is None

    def explain(self, facts: Facts) -> str:
        problem = self._problem(facts)
        if problem is not None:
            return problem
        service = facts.service(self.name)
        if service is None or not service.present:
            return f"{self.name} not present"
        return (
            f"{self.name} present, start type {service.start_type or 'unknown'},"
            f" state {service.state or 'unknown'}"
        )


@dataclass(frozen=True, slots=True)
class ReaderCondition:
    """At least one smartcard reader is present (or, with `expected` false, none is)."""

    expected: bool

    def test(self, facts: Facts) -> bool:
        return bool(facts.smartcard_readers) is self.expected

    def explain(self, facts: Facts) -> str:
        readers = facts.smartcard_readers
        if not readers:
            return "no smartcard reader present"
        more = f" and {len(readers) - 2} more" if len(readers) > 2 else ""
        return "smartcard reader present: " + ", ".join(readers[:2]) + more


@dataclass(frozen=True, slots=True)
class CardTypeCondition:
    """A registered smart-card type matches by name (and, if given, by minidriver)."""

    name: Matcher
    minidriver: Matcher | None

    def _found(self, facts: Facts) -> tuple[list[SmartCardType], SmartCardType | None]:
        named = [card for card in facts.smartcard_types if self.name(card.name)]
        minidriver = self.minidriver
        good = next((c for c in named if minidriver is None or minidriver(c.minidriver)), None)
        return named, good

    def test(self, facts: Facts) -> bool:
        return self._found(facts)[1] is not None

    def explain(self, facts: Facts) -> str:
        named, good = self._found(facts)
        if good is not None:
            driver = good.minidriver or "none"
            return f"smart-card type {good.name} registered (minidriver {driver})"
        if not named:
            return f"no smart-card type matching {self.name} registered"
        card = named[0]
        return (
            f"smart-card type {card.name} uses minidriver {card.minidriver or 'none'},"
            f" not {self.minidriver}"
        )


@dataclass(frozen=True, slots=True)
class PendingRebootCondition:
    """A pending-reboot indicator is set (or, with `expected` false, none is)."""

    expected: bool

    def test(self, facts: Facts) -> bool:
        return facts.pending_reboot.pending is self.expected

    def explain(self, facts: Facts) -> str:
        signs = facts.pending_reboot
        names = [
            name
            for name, flag in (
                ("Component Based Servicing", signs.component_based_servicing),
                ("Windows Update", signs.windows_update),
                ("PendingFileRenameOperations", signs.file_rename_operations),
            )
            if flag
        ]
        return f"reboot pending ({', '.join(names)})" if names else "no reboot pending"


@dataclass(frozen=True, slots=True)
class ListeningCondition:
    """Credential Management listens on localhost (known only while a user is logged in)."""

    expected: bool

    def test(self, facts: Facts) -> bool:
        return facts.cm_listening is self.expected

    def explain(self, facts: Facts) -> str:
        if facts.cm_listening is None:
            return "whether Credential Management listens is unknown"
        verb = "listens" if facts.cm_listening else "does not listen"
        return f"Credential Management {verb} on localhost"


@dataclass(frozen=True, slots=True)
class SitePattern:
    """A Chrome/Edge content-settings site pattern: [scheme://][[*.]host][:port][/path].

    A missing scheme or port matches any; `[*.]host` also matches every subdomain.
    """

    scheme: str | None
    host: str | None  # None: any host
    subdomains: bool
    port: int | None

    @classmethod
    def parse(cls, text: str) -> SitePattern | None:
        rest = text.strip().casefold()
        scheme: str | None = None
        if "://" in rest:
            scheme, rest = rest.split("://", 1)
            scheme = None if scheme == "*" else scheme
        rest = rest.split("/", 1)[0]
        port: int | None = None
        host_part, colon, port_text = rest.rpartition(":")
        if colon and "]" not in port_text:  # "[::1]" has colons but no port
            if port_text not in ("", "*"):
                if not port_text.isdigit():
                    return None
                port = int(port_text)
            rest = host_part
        subdomains = rest.startswith("[*.]")
        host = rest.removeprefix("[*.]")
        if host.startswith("[") and host.endswith("]"):  # an IPv6 literal, as URLs write it
            host = host[1:-1]
        if host in ("", "*"):
            return cls(scheme, None, False, port)
        return cls(scheme, host, subdomains, port)

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if self.scheme is not None and self.scheme != scheme:
            return False
        if self.port is not None and self.port != port:
            return False
        if self.host is None or self.host == host:
            return True
        return self.subdomains and host.endswith("." + self.host)


_DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True, slots=True)
class CookiesCondition:
    """Every listed browser that blocks third-party cookies allows them for `url`."""

    url: str
    browsers: frozenset[str]
    scheme: str
    host: str
    port: int

    @classmethod
    def for_url(cls, url: str, browsers: Sequence[str]) -> CookiesCondition:
        parts = urlsplit(url)
        scheme = parts.scheme.casefold()
        port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
        return cls(url, frozenset(browsers), scheme, (parts.hostname or "").casefold(), port)

    def _allows(self, policy: BrowserCookiePolicy) -> str | None:
        """The allowed-URL entry that lets `url` through, or None."""
        for entry in policy.cookies_allowed_for_urls:
            pattern = SitePattern.parse(entry)
            if pattern is not None and pattern.matches(self.scheme, self.host, self.port):
                return entry
        return None

    def _blocking(self, facts: Facts) -> list[BrowserCookiePolicy]:
        return [
            p
            for p in facts.browser_policies
            if p.browser in self.browsers and p.block_third_party_cookies
        ]

    def test(self, facts: Facts) -> bool:
        return all(self._allows(p) is not None for p in self._blocking(facts))

    def explain(self, facts: Facts) -> str:
        blocking = self._blocking(facts)
        for policy in blocking:
            if self._allows(policy) is None:
                allowed = list(policy.cookies_allowed_for_urls)
                listed = ", ".join(allowed[:3]) + (" …" if len(allowed) > 3 else "")
                extra = f" (allowed: {listed})" if allowed else ""
                return (
                    f"{policy.browser} blocks third-party cookies without an exception for"
                    f" {self.url}{extra}"
                )
        if not blocking:
            return "no browser blocks third-party cookies"
        return "; ".join(f"{p.browser} allows {self.url} via {self._allows(p)}" for p in blocking)


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
