"""An independent reading of the default policy's rule table, to check the profiles' declarations.

Written from the rule table alone (not from cmscan's policy engine), so a profile whose declared
verdict disagrees with the table is caught here even before the policy engine exists.
"""

from __future__ import annotations

from collectors.facts import Facts, Product
from collectors.wildcards import like


def _version(text: str | None) -> tuple[int, ...]:
    return tuple(int(p) for p in (text or "0").split("."))


def _find(facts: Facts, pattern: str) -> list[Product]:
    return [p for p in facts.products if like(p.name, pattern)]


def failing_rules(facts: Facts) -> tuple[list[str], list[str]]:
    """(required rule ids that fail, advisory rule ids that fail)."""
    required: list[str] = []
    advisory: list[str] = []
    cm = _find(facts, "NHS Credential Management*")
    if not cm:
        required.append("cm-installed")
    else:
        version = max(_version(p.version) for p in cm)
        if version < (1, 4, 2, 0):
            required.append("cm-version")
        if version < (2,) and not _find(facts, "NHS Port Service*"):
            required.append("port-service")
    if _find(facts, "NHS Identity Hub*"):
        required.append("no-identity-hub")
    agents = _find(facts, "NHS Identity Agent*") + _find(facts, "NHS Digital Identity Agent*")
    if agents and min(_version(p.version) for p in agents) < (2, 4, 10, 0):
        required.append("ia-version")
    if cm and max(_version(p.version) for p in cm) >= (3,) and agents:
        required.append("no-ia-with-smartcard-connect")
    middleware = [
        p
        for p in facts.products
        if like(p.name, "*Oberthur*")
        or (
            like(p.name, "*Authentic*")
            and (like(p.publisher or "", "IDEMIA*") or like(p.publisher or "", "Oberthur*"))
        )
    ]
    if not middleware:
        required.append("oberthur-middleware")
    if facts.dotnet_release is None or facts.dotnet_release < 528040:
        required.append("dotnet-48")
    scardsvr = facts.service("SCardSvr")
    if scardsvr is None or not scardsvr.present or scardsvr.start_type == "Disabled":
        required.append("scardsvr-enabled")
    if not facts.smartcard_readers:
        advisory.append("smartcard-reader")
    if facts.pending_reboot.pending:
        advisory.append("no-pending-reboot")
    for policy in facts.browser_policies:
        if (
            policy.block_third_party_cookies
            and "[*.]localhost" not in policy.cookies_allowed_for_urls
        ):
            advisory.append("browser-cookies-localhost")
            break
    if not any(like(t.name, "*PIV*") for t in facts.smartcard_types):
        advisory.append("piv-minidriver")
    return required, advisory
