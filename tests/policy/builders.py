"""Facts for policy tests, shaped like what the probe reports from a real workstation."""

from __future__ import annotations

from collections.abc import Sequence

from collectors.facts import (
    BrowserCookiePolicy,
    Facts,
    PendingReboot,
    ProbeInfo,
    Product,
    Service,
    SmartCardType,
)

WATCHED = ("NHS *", "*Oberthur*", "*IDEMIA*", "*Authentic*Web*Pack*")
CM = "NHS Credential Management"
PORT_SERVICE = "NHS Port Service"
IA = "NHS Identity Agent"
DIGITAL_IA = "NHS Digital Identity Agent"
HUB = "NHS Identity Hub"
PIV = "Identity Device (NIST SP 800-73 [PIV])"
GENERIC_CARD = "Identity Device (Microsoft Generic Profile)"
READER = "Identiv uTrust 2700 R Smart Card Reader 0"


def product(
    name: str, version: str | None = None, publisher: str | None = None, view: str = "x64"
) -> Product:
    return Product.model_validate(
        {"name": name, "version": version, "publisher": publisher, "view": view}
    )


def cm(version: str = "4.1.2.0", view: str = "x64") -> Product:
    return product(CM, version, "NHS England", view)


def port_service() -> Product:
    return product(PORT_SERVICE, "1.4.2.0", "NHS England", "x86")


def identity_agent(version: str, name: str = IA) -> Product:
    return product(name, version, "NHS Digital", "x86")


def identity_hub() -> Product:
    return product(HUB, "1.2.0.0", "NHS Digital", "x86")


def idemia() -> Product:
    return product("IDEMIA Authentic Web Pack", "5.4.1.0", "IDEMIA", "x86")


def oberthur() -> Product:
    return product(
        "Oberthur Technologies Authentic Web Pack", "5.2.0.1", "Oberthur Technologies", "x86"
    )


GOOD_PRODUCTS = (cm(), idemia())
CM14_PRODUCTS = (cm("1.4.2.0", "x86"), port_service(), oberthur())


def cookies(browser: str, blocked: bool | None, *allowed: str) -> BrowserCookiePolicy:
    return BrowserCookiePolicy.model_validate(
        {
            "browser": browser,
            "block_third_party_cookies": blocked,
            "cookies_allowed_for_urls": list(allowed),
        }
    )


def facts(
    products: Sequence[Product] = GOOD_PRODUCTS,
    *,
    dotnet: int | None = 533320,
    scardsvr: str | None = "Manual",
    readers: Sequence[str] = (READER,),
    piv: bool = True,
    pending: bool = False,
    browsers: Sequence[BrowserCookiePolicy] = (),
    patterns: Sequence[str] = WATCHED,
    services: Sequence[Service] | None = None,
    card_types: Sequence[SmartCardType] | None = None,
) -> Facts:
    """A well-kept CM 4.1 workstation unless told otherwise."""
    if services is None:
        scard = (
            Service(name="SCardSvr", present=False)
            if scardsvr is None
            else Service(name="SCardSvr", present=True, state="Running", start_type=scardsvr)
        )
        services = (
            scard,
            Service(name="CertPropSvc", present=True, state="Running", start_type="Manual"),
        )
    if card_types is None:
        card_types = [SmartCardType(name=GENERIC_CARD, minidriver="msclmd.dll")]
        if piv:
            card_types.append(SmartCardType(name=PIV, minidriver="msclmd.dll"))
    return Facts(
        schema_version=1,
        probe=ProbeInfo(
            marker="cmscan-probe", version="1", duration_ms=900, patterns=tuple(patterns)
        ),
        products=tuple(products),
        dotnet_release=dotnet,
        services=tuple(services),
        smartcard_readers=tuple(readers),
        smartcard_types=tuple(card_types),
        cm_listening=True,
        pending_reboot=PendingReboot(windows_update=pending),
        browser_policies=tuple(browsers),
    )
