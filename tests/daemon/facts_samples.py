"""Facts documents for daemon tests: a ready workstation and one without Credential Management."""

from __future__ import annotations

from collectors.facts import Facts, ProbeInfo, Product, Service, SmartCardType

PATTERNS = ("NHS *", "*Oberthur*", "*IDEMIA*", "*Authentic*Web*Pack*")


def ready() -> Facts:
    """A workstation that passes every rule of the default policy."""
    return Facts(
        schema_version=1,
        probe=ProbeInfo(marker="cmscan-probe", version="1.0.0", duration_ms=420, patterns=PATTERNS),
        products=(
            Product(
                name="NHS Credential Management",
                version="4.1.2.0",
                publisher="NHS England",
                view="x64",
            ),
            Product(
                name="Oberthur Technologies Authentic Web Pack",
                version="5.2.0.1",
                publisher="Oberthur Technologies",
                view="x86",
            ),
        ),
        dotnet_release=533320,
        services=(Service(name="SCardSvr", present=True, state="Running", start_type="Automatic"),),
        smartcard_readers=("OMNIKEY 3x21 0",),
        smartcard_types=(
            SmartCardType(name="Identity Device (NIST SP 800-73 [PIV])", minidriver="msclmd.dll"),
        ),
    )


def missing_cm() -> Facts:
    """The same workstation before NHS Credential Management was installed."""
    facts = ready()
    return facts.model_copy(update={"products": facts.products[1:]})
