"""The simulator's catalogue as data: host profiles and their expected verdicts, changes, faults."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Literal

from simulator.behaviour import Fault

# The rule ids of the default policy (nhs-cis-baseline) that a profile may expect to fail.
REQUIRED_RULES = (
    "cm-installed",
    "cm-version",
    "port-service",
    "no-identity-hub",
    "ia-version",
    "no-ia-with-smartcard-connect",
    "oberthur-middleware",
    "dotnet-48",
    "scardsvr-enabled",
)
ADVISORY_RULES = (
    "smartcard-reader",
    "no-pending-reboot",
    "browser-cookies-localhost",
    "piv-minidriver",
)

# The product name patterns cmscan sends to the probe (PowerShell -like, case-insensitive).
WATCHED_PATTERNS = ("NHS *", "*Oberthur*", "*IDEMIA*", "*Authentic*Web*Pack*")

Status = Literal["compliant", "noncompliant"]
View = Literal["x64", "x86"]
StartType = Literal["Automatic", "Manual", "Disabled"]
# allowed: no policy blocks third-party cookies; blocked-with-localhost: blocked, with the
# [*.]localhost exception CM needs; blocked: blocked without it.
CookiePolicy = Literal["allowed", "blocked-with-localhost", "blocked"]

IDENTITY_AGENT = "NHS Identity Agent"
DIGITAL_IDENTITY_AGENT = "NHS Digital Identity Agent"


@dataclass(frozen=True, slots=True)
class Setup:
    """What a host has installed and configured; the defaults are a well-kept CM 4.1 workstation."""

    cm_version: str | None = "4.1.2.0"  # NHS Credential Management, None when absent
    cm_view: View = "x64"  # x86: registered under WOW6432Node (the 32-bit view)
    port_service: bool = False
    identity_agent: str | None = None  # its version, None when absent
    identity_agent_name: str = IDENTITY_AGENT
    identity_hub: bool = False
    middleware: bool = True  # Oberthur / IDEMIA Authentic Web Pack
    piv_minidriver: bool = True
    dotnet_release: int | None = 533320  # 4.8.1
    scardsvr: StartType | None = "Manual"  # None: the service does not exist
    pending_reboot: bool = False
    smartcard_reader: bool = True
    cookies: CookiePolicy = "allowed"


@dataclass(frozen=True, slots=True)
class Profile:
    """A kind of host, and what the default policy must conclude about it."""

    name: str
    summary: str
    setup: Setup
    expected_status: Status
    expected_failing_rules: tuple[str, ...] = ()
    expected_advisories: tuple[str, ...] = ()
    weight: int = 0  # share in the default mix; 0: reached only through run-time changes

    def __post_init__(self) -> None:
        unknown = set(self.expected_failing_rules) - set(REQUIRED_RULES)
        unknown |= set(self.expected_advisories) - set(ADVISORY_RULES)
        if unknown:
            raise ValueError(f"profile {self.name}: unknown rule ids {sorted(unknown)}")
        if (self.expected_status == "noncompliant") != bool(self.expected_failing_rules):
            raise ValueError(f"profile {self.name}: status disagrees with its failing rules")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


_GOOD = Setup()
_CM14 = Setup(cm_version="1.4.2.0", cm_view="x86", port_service=True)

PROFILES: Mapping[str, Profile] = MappingProxyType(
    {
        p.name: p
        for p in (
            Profile(
                "compliant",
                "CM 4.1.2.0, Oberthur middleware, PIV minidriver, .NET 4.8.1",
                _GOOD,
                "compliant",
                weight=34,
            ),
            Profile(
                "compliant-cm-4.1.0",
                "CM 4.1.0.0, otherwise well kept",
                replace(_GOOD, cm_version="4.1.0.0"),
                "compliant",
                weight=6,
            ),
            Profile(
                "compliant-cm-3.1-x86",
                "CM 3.1.0.0 registered in the 32-bit (WOW6432Node) view",
                replace(_GOOD, cm_version="3.1.0.0", cm_view="x86"),
                "compliant",
                weight=5,
            ),
            Profile(
                "compliant-cm-1.4",
                "CM 1.4.2.0 with NHS Port Service, 32-bit view",
                _CM14,
                "compliant",
                weight=8,
            ),
            Profile(
                "compliant-cm-1.4-identity-agent",
                "CM 1.4.2.0 with Port Service and a supported Identity Agent 2.4.10.0",
                replace(_CM14, identity_agent="2.4.10.0"),
                "compliant",
                weight=3,
            ),
            Profile(
                "compliant-cm-1.4-dotnet-4.8.0",
                "CM 1.4.2.0 on .NET 4.8 exactly (Release 528040)",
                replace(_CM14, dotnet_release=528040),
                "compliant",
                weight=2,
            ),
            Profile(
                "compliant-cookies-localhost",
                "third-party cookies blocked in Chrome and Edge, with the [*.]localhost exception",
                replace(_GOOD, cookies="blocked-with-localhost"),
                "compliant",
                weight=4,
            ),
            Profile(
                "pending-reboot",
                "compliant, but an install waits for a reboot",
                replace(_GOOD, pending_reboot=True),
                "compliant",
                expected_advisories=("no-pending-reboot",),
                weight=5,
            ),
            Profile(
                "cm-4.1.0-pending-reboot",
                "CM 4.1.0.0 just installed, waiting for a reboot",
                replace(_GOOD, cm_version="4.1.0.0", pending_reboot=True),
                "compliant",
                expected_advisories=("no-pending-reboot",),
            ),
            Profile(
                "cm-1.4-dotnet-4.8.0-pending-reboot",
                "CM 1.4.2.0, .NET 4.8 just installed, waiting for a reboot",
                replace(_CM14, dotnet_release=528040, pending_reboot=True),
                "compliant",
                expected_advisories=("no-pending-reboot",),
            ),
            Profile(
                "no-reader",
                "compliant software, but no smartcard reader attached",
                replace(_GOOD, smartcard_reader=False),
                "compliant",
                expected_advisories=("smartcard-reader",),
                weight=3,
            ),
            Profile(
                "no-piv-minidriver",
                "no PIV smart-card type registered (series 9/10 cards will not work)",
                replace(_GOOD, piv_minidriver=False),
                "compliant",
                expected_advisories=("piv-minidriver",),
                weight=3,
            ),
            Profile(
                "cookies-blocked",
                "Edge blocks third-party cookies without a [*.]localhost exception",
                replace(_GOOD, cookies="blocked"),
                "compliant",
                expected_advisories=("browser-cookies-localhost",),
                weight=3,
            ),
            Profile(
                "cm-missing",
                "no NHS Credential Management",
                replace(_GOOD, cm_version=None),
                "noncompliant",
                ("cm-installed",),
                weight=7,
            ),
            Profile(
                "cm-1.3.1",
                "CM 1.3.1.0 with Port Service: too old for SHA-256 signing with series 8 cards",
                replace(_CM14, cm_version="1.3.1.0"),
                "noncompliant",
                ("cm-version",),
                weight=3,
            ),
            Profile(
                "cm-1.4-no-port-service",
                "CM 1.4.2.0 without NHS Port Service",
                replace(_CM14, port_service=False),
                "noncompliant",
                ("port-service",),
                weight=2,
            ),
            Profile(
                "identity-hub",
                "the deprecated NHS Identity Hub instead of CM",
                replace(_GOOD, cm_version=None, identity_hub=True),
                "noncompliant",
                ("cm-installed", "no-identity-hub"),
                weight=2,
            ),
            Profile(
                "identity-agent-old",
                "CM 1.4.2.0 with Identity Agent 2.3.2.0 (blocked since September 2025)",
                replace(_CM14, identity_agent="2.3.2.0"),
                "noncompliant",
                ("ia-version",),
                weight=3,
            ),
            Profile(
                "digital-identity-agent-old",
                "CM 1.4.2.0 with NHS Digital Identity Agent 2.3.2.0",
                replace(
                    _CM14, identity_agent="2.3.2.0", identity_agent_name=DIGITAL_IDENTITY_AGENT
                ),
                "noncompliant",
                ("ia-version",),
                weight=1,
            ),
            Profile(
                "identity-agent-with-smartcard-connect",
                "CM 4.1.2.0 (Smartcard Connect) alongside Identity Agent 2.4.10.0",
                replace(_GOOD, identity_agent="2.4.10.0"),
                "noncompliant",
                ("no-ia-with-smartcard-connect",),
                weight=3,
            ),
            Profile(
                "no-middleware",
                "no Oberthur / IDEMIA middleware",
                replace(_GOOD, middleware=False),
                "noncompliant",
                ("oberthur-middleware",),
                weight=4,
            ),
            Profile(
                "dotnet-4.7.2",
                "CM 1.4.2.0 on .NET Framework 4.7.2 (Release 461814)",
                replace(_CM14, dotnet_release=461814),
                "noncompliant",
                ("dotnet-48",),
                weight=2,
            ),
            Profile(
                "smartcard-service-disabled",
                "the Smart Card service (SCardSvr) is disabled",
                replace(_GOOD, scardsvr="Disabled"),
                "noncompliant",
                ("scardsvr-enabled",),
                weight=2,
            ),
            Profile(
                "smartcard-service-missing",
                "the Smart Card service (SCardSvr) does not exist",
                replace(_GOOD, scardsvr=None),
                "noncompliant",
                ("scardsvr-enabled",),
                weight=1,
            ),
            Profile(
                "legacy-estate",
                "CM 1.3.1.0 without Port Service, Identity Agent 2.3.2.0, no middleware, .NET 4.7",
                Setup(
                    cm_version="1.3.1.0",
                    cm_view="x86",
                    identity_agent="2.3.2.0",
                    middleware=False,
                    piv_minidriver=False,
                    dotnet_release=461814,
                ),
                "noncompliant",
                ("cm-version", "port-service", "ia-version", "oberthur-middleware", "dotnet-48"),
                ("piv-minidriver",),
                weight=2,
            ),
        )
    }
)

MIXES = ("mix", "all-good", "all-bad")


def mix_profiles(mix: str) -> list[tuple[Profile, int]]:
    """The profiles a mix draws from, with their weights."""
    if mix == "mix":
        return [(p, p.weight) for p in PROFILES.values() if p.weight]
    if mix == "all-good":
        return [
            (p, p.weight)
            for p in PROFILES.values()
            if p.weight and p.expected_status == "compliant" and not p.expected_advisories
        ]
    if mix == "all-bad":
        return [
            (p, p.weight)
            for p in PROFILES.values()
            if p.weight and p.expected_status == "noncompliant"
        ]
    raise ValueError(f"unknown profile mix {mix!r}; use one of {', '.join(MIXES)}")


# -- run-time changes: each action edits a Setup; the result must be a declared profile ---------


def _install_cm(setup: Setup) -> Setup:
    if setup.cm_version and _version(setup.cm_version) >= _version("4.1.0.0"):
        return setup  # the installer refuses to downgrade, and a reinstall changes nothing
    # CM 3 and later replace CM 1.x, its Port Service and the old Identity Hub.
    return replace(
        setup,
        cm_version="4.1.0.0",
        cm_view="x64",
        port_service=False,
        identity_hub=False,
        pending_reboot=True,
    )


def _install_middleware(setup: Setup) -> Setup:
    return setup if setup.middleware else replace(setup, middleware=True, pending_reboot=True)


def _install_dotnet(setup: Setup) -> Setup:
    if setup.dotnet_release is not None and setup.dotnet_release >= 528040:
        return setup
    return replace(setup, dotnet_release=528040, pending_reboot=True)


def _remove_identity_agent(setup: Setup) -> Setup:
    return replace(setup, identity_agent=None, identity_agent_name=IDENTITY_AGENT)


def _enable_smartcard_service(setup: Setup) -> Setup:
    return replace(setup, scardsvr="Manual") if setup.scardsvr == "Disabled" else setup


def _allow_localhost_cookies(setup: Setup) -> Setup:
    return replace(setup, cookies="blocked-with-localhost") if setup.cookies == "blocked" else setup


def _reboot(setup: Setup) -> Setup:
    return replace(setup, pending_reboot=False)


@dataclass(frozen=True, slots=True)
class Action:
    """A change an administrator makes to a host, e.g. an install pushed by SCCM or Intune."""

    name: str
    summary: str
    apply: Callable[[Setup], Setup]


ACTIONS: Mapping[str, Action] = MappingProxyType(
    {
        a.name: a
        for a in (
            Action(
                "install-cm-4.1",
                "install NHS Credential Management 4.1.0.0 (replaces CM 1.x, Port Service and"
                " Identity Hub; needs a reboot)",
                _install_cm,
            ),
            Action(
                "install-middleware",
                "install the IDEMIA Authentic Web Pack (needs a reboot)",
                _install_middleware,
            ),
            Action(
                "install-dotnet-4.8",
                "install .NET Framework 4.8 (needs a reboot)",
                _install_dotnet,
            ),
            Action("remove-identity-agent", "uninstall the Identity Agent", _remove_identity_agent),
            Action(
                "enable-smartcard-service",
                "set the Smart Card service back to Manual start",
                _enable_smartcard_service,
            ),
            Action(
                "allow-localhost-cookies",
                "add [*.]localhost to CookiesAllowedForUrls where cookies are blocked",
                _allow_localhost_cookies,
            ),
            Action("reboot", "restart the machine, which completes pending installs", _reboot),
        )
    }
)

_BY_SETUP: Mapping[Setup, Profile] = MappingProxyType({p.setup: p for p in PROFILES.values()})
if len(_BY_SETUP) != len(PROFILES):
    raise RuntimeError("two profiles declare the same setup")


def transition(profile: Profile, action: str) -> Profile | None:
    """The declared profile a host reaches through `action`, or None when no profile declares
    the result (the change is then not made: every host state keeps a declared verdict)."""
    try:
        step = ACTIONS[action]
    except KeyError:
        raise ValueError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}") from None
    return _BY_SETUP.get(step.apply(profile.setup))


@dataclass(frozen=True, slots=True)
class FaultExpectation:
    """What cmscan must record for a host with this fault."""

    outcome: str
    status: str | None  # None: the profile's own status (the probe still succeeds)


FAULT_EXPECTATIONS: Mapping[Fault, FaultExpectation] = MappingProxyType(
    {
        Fault.POWERED_OFF: FaultExpectation("unreachable", "unreachable"),
        Fault.BLACK_HOLE: FaultExpectation("timeout", "unreachable"),
        Fault.SLOW: FaultExpectation("ok", None),
        Fault.BAD_CREDENTIALS: FaultExpectation("auth_failed", "auth_failed"),
        Fault.QUOTA_EXCEEDED: FaultExpectation("protocol_error", "error"),
        Fault.RESET: FaultExpectation("protocol_error", "error"),
        Fault.MALFORMED_OUTPUT: FaultExpectation("probe_error", "error"),
        Fault.OVERSIZED_OUTPUT: FaultExpectation("probe_error", "error"),
        Fault.PROBE_EXCEPTION: FaultExpectation("probe_error", "error"),
    }
)

# Relative frequency of each fault among faulty hosts: machines switched off are by far the
# most common reason a practice workstation does not answer.
FAULT_WEIGHTS: Mapping[Fault, int] = MappingProxyType(
    {
        Fault.POWERED_OFF: 30,
        Fault.BLACK_HOLE: 8,
        Fault.SLOW: 14,
        Fault.BAD_CREDENTIALS: 8,
        Fault.QUOTA_EXCEEDED: 8,
        Fault.RESET: 8,
        Fault.MALFORMED_OUTPUT: 8,
        Fault.OVERSIZED_OUTPUT: 8,
        Fault.PROBE_EXCEPTION: 8,
    }
)

# What every host has besides the NHS stack, so the probe's filter has something to drop:
# (name, publisher, version, view).
ORDINARY_SOFTWARE: tuple[tuple[str, str, str, View], ...] = (
    ("Microsoft Edge", "Microsoft Corporation", "131.0.2903.86", "x86"),
    ("Microsoft Edge WebView2 Runtime", "Microsoft Corporation", "131.0.2903.86", "x86"),
    ("Google Chrome", "Google LLC", "131.0.6778.140", "x64"),
    ("7-Zip 23.01 (x64)", "Igor Pavlov", "23.01", "x64"),
    (
        "Microsoft 365 Apps for enterprise - en-gb",
        "Microsoft Corporation",
        "16.0.17928.20336",
        "x64",
    ),
    ("EMIS Web", "EMIS Health", "9.24.1.0", "x86"),
    ("SystmOne Client", "The Phoenix Partnership", "3.18.0.0", "x86"),
    ("Docman 10", "Docman", "10.4.2.0", "x86"),
    ("Adobe Acrobat Reader DC MUI", "Adobe Inc.", "24.005.20320", "x86"),
    ("Microsoft Teams", "Microsoft Corporation", "24295.605.3225.8804", "x64"),
    (
        "Microsoft Visual C++ 2015-2022 Redistributable (x64) - 14.40.33810",
        "Microsoft Corporation",
        "14.40.33810.0",
        "x64",
    ),
    (
        "Microsoft Visual C++ 2015-2022 Redistributable (x86) - 14.40.33810",
        "Microsoft Corporation",
        "14.40.33810.0",
        "x86",
    ),
    ("Mozilla Firefox (x64 en-GB)", "Mozilla", "133.0.3", "x64"),
    ("Notepad++ (64-bit x64)", "Notepad++ Team", "8.6.9", "x64"),
    ("VLC media player", "VideoLAN", "3.0.21", "x64"),
    ("Cisco Secure Client - AnyConnect VPN", "Cisco Systems, Inc.", "5.1.4.74", "x86"),
    ("Sophos Endpoint Agent", "Sophos Limited", "2023.2.1.2", "x64"),
    ("Configuration Manager Client", "Microsoft Corporation", "5.00.9128.1000", "x64"),
    ("Accurx Chain", "Accurx Ltd", "2.231.0", "x86"),
    ("Java 8 Update 421 (64-bit)", "Oracle Corporation", "8.0.4210.9", "x64"),
)
# Always installed: a practice machine without a browser or Office is not a practice machine.
ALWAYS_INSTALLED = ("Microsoft Edge", "Microsoft 365 Apps for enterprise - en-gb")
