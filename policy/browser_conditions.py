"""Conditions on browser policy: whether a site is let through a third-party cookie block."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from collectors.facts import BrowserCookiePolicy, Facts


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
