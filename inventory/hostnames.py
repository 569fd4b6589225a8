"""Validation of host names (DNS and NetBIOS) and IP addresses as inventories write them."""

from __future__ import annotations

import ipaddress
import re

_DNS_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# NetBIOS computer names may use a few characters DNS does not; these are forbidden in them.
_NETBIOS_FORBIDDEN = set('\\/:*?"<>| .,;=+[]')
NETBIOS_MAX = 15


def normalise_hostname(value: str) -> str:
    """The host name in canonical form (trimmed, lower case, no trailing dot), or ValueError."""
    name = value.strip().lower()
    if name.endswith(".") and "." in name[:-1]:
        name = name[:-1]  # a fully qualified name written with its root dot
    if not name:
        raise ValueError("hostname is empty")
    if _is_ip(name):
        raise ValueError(f"{value.strip()!r} is an IP address; put it in the address column")
    if len(name) > 253:
        raise ValueError(f"hostname is {len(name)} characters long; DNS allows 253")
    if "." in name:
        for label in name.split("."):
            if not _DNS_LABEL.fullmatch(label):
                raise ValueError(f"{value.strip()!r} is not a valid DNS name (label {label!r})")
        if name.rsplit(".", 1)[1].isdigit():
            raise ValueError(f"{value.strip()!r} is not a valid DNS name (numeric top-level label)")
        return name
    if _DNS_LABEL.fullmatch(name):
        return name
    if len(name) > NETBIOS_MAX:
        raise ValueError(f"{value.strip()!r} is neither a DNS name nor a 15-character NetBIOS name")
    bad = set(name) & _NETBIOS_FORBIDDEN or {c for c in name if not c.isprintable()}
    if bad:
        shown = ", ".join(repr(c) for c in sorted(bad))
        raise ValueError(f"{value.strip()!r} has characters a host name cannot have: {shown}")
    return name


def short_name(hostname: str) -> str:
    """The first label: what Windows shows as the computer name."""
    return hostname.split(".", 1)[0]


def normalise_address(value: str) -> str:
    """An IPv4 or IPv6 address in canonical form (brackets around IPv6 are accepted)."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{value.strip()!r} is not an IPv4 or IPv6 address") from None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True
