"""What a simulated host answers to a script: the probe's facts document, or PowerShell's error."""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from collectors.facts import (
    MAX_OUTPUT_BYTES,
    PROBE_MARKER,
    SCHEMA_VERSION,
    BrowserCookiePolicy,
    Facts,
    OperatingSystem,
    PendingReboot,
    ProbeInfo,
    Product,
    Service,
    SmartCardType,
)
from collectors.probe import parse_stdin_invocation
from collectors.wildcards import WildcardError, compile_wildcard
from simulator.behaviour import Fault, PowerShellError, ScriptResult
from simulator.profiles import Setup, View

_PROBE_MARKER = re.compile(re.escape(PROBE_MARKER) + r"/(\d+)")
# The probe states its own version in a variable; the marker's number is the fallback.
_PROBE_VERSION = re.compile(r"\$ProbeVersion\s*=\s*'([^']{1,40})'")

PIV_CARD_TYPE = "Identity Device (NIST SP 800-73 [PIV])"
GENERIC_CARD_TYPE = "Identity Device (Microsoft Generic Profile)"
CARD_MINIDRIVER = "msclmd.dll"
LOCALHOST_EXCEPTION = "[*.]localhost"

MIDDLEWARE_VARIANTS = {
    "oberthur": ("Oberthur Technologies Authentic Web Pack", "Oberthur Technologies", "5.2.0.1"),
    "idemia": ("IDEMIA Authentic Web Pack", "IDEMIA", "5.4.1.0"),
}


@dataclass(frozen=True, slots=True)
class Machine:
    """What makes one host's answers its own besides its profile: drawn once from the fleet seed."""

    computer_name: str
    os: OperatingSystem
    ordinary_software: tuple[Product, ...]
    readers: tuple[str, ...]  # used when the profile has a reader
    middleware_vendor: str  # a key of MIDDLEWARE_VARIANTS
    install_date: str  # YYYYMMDD, for the NHS products
    user_logged_on: bool  # CM only listens on 43485 while somebody is logged on
    reboot_sign: str  # which PendingReboot flag a pending install sets
    chrome_policy_set: bool  # whether Chrome's cookie policy is written explicitly as "allow"
    duration_ms: int  # the probe's typical run time on this machine


def _valid_wildcard(pattern: str) -> bool:
    try:
        compile_wildcard(pattern)
    except WildcardError:
        return False
    return True


def products(setup: Setup, machine: Machine) -> list[Product]:
    """Every Add/Remove Programs entry of a host, ordinary software included."""
    date = machine.install_date
    found = list(machine.ordinary_software)

    def nhs(name: str, version: str, publisher: str, view: View) -> None:
        found.append(
            Product(name=name, version=version, publisher=publisher, install_date=date, view=view)
        )

    if setup.cm_version:
        nhs("NHS Credential Management", setup.cm_version, "NHS England", setup.cm_view)
    if setup.port_service:
        nhs("NHS Port Service", "1.4.2.0", "NHS England", "x86")
    if setup.identity_agent:
        nhs(setup.identity_agent_name, setup.identity_agent, "NHS Digital", "x86")
    if setup.identity_hub:
        nhs("NHS Identity Hub", "1.2.0.0", "NHS Digital", "x86")
    if setup.middleware:
        name, publisher, version = MIDDLEWARE_VARIANTS[machine.middleware_vendor]
        nhs(name, version, publisher, "x86")
    # Registry enumeration order follows key names (often GUIDs), not display names.
    return sorted(found, key=lambda p: zlib.crc32(f"{machine.computer_name}/{p.name}".encode()))


def _browser_policies(setup: Setup, machine: Machine) -> tuple[BrowserCookiePolicy, ...]:
    if setup.cookies == "allowed":
        chrome = False if machine.chrome_policy_set else None
        return (
            BrowserCookiePolicy(browser="chrome", block_third_party_cookies=chrome),
            BrowserCookiePolicy(browser="edge"),
        )
    if setup.cookies == "blocked-with-localhost":
        allowed = (LOCALHOST_EXCEPTION, "[*.]nhs.uk")
        return (
            BrowserCookiePolicy(
                browser="chrome", block_third_party_cookies=True, cookies_allowed_for_urls=allowed
            ),
            BrowserCookiePolicy(
                browser="edge", block_third_party_cookies=True, cookies_allowed_for_urls=allowed
            ),
        )
    return (
        BrowserCookiePolicy(browser="chrome", block_third_party_cookies=None),
        BrowserCookiePolicy(
            browser="edge", block_third_party_cookies=True, cookies_allowed_for_urls=("[*.]nhs.uk",)
        ),
    )


def _services(setup: Setup) -> tuple[Service, ...]:
    if setup.scardsvr is None:
        scardsvr = Service(name="SCardSvr", present=False)
    else:
        running = setup.scardsvr != "Disabled" and setup.smartcard_reader
        scardsvr = Service(
            name="SCardSvr",
            present=True,
            state="Running" if running else "Stopped",
            start_type=setup.scardsvr,
        )
    return (
        scardsvr,
        Service(name="CertPropSvc", present=True, state="Running", start_type="Manual"),
        Service(name="ScDeviceEnum", present=True, state="Stopped", start_type="Manual"),
    )


def facts(
    setup: Setup,
    machine: Machine,
    patterns: Sequence[str],
    *,
    probe_version: str = str(SCHEMA_VERSION),
) -> Facts:
    """The facts the probe reports for a host, products filtered by `patterns` like -like would
    (no patterns: every product). Raises WildcardError for a pattern PowerShell would refuse."""
    compiled = [compile_wildcard(p) for p in patterns]
    kept = tuple(
        p
        for p in products(setup, machine)
        if not compiled or any(rx.match(p.name) for rx in compiled)
    )
    card_types = [SmartCardType(name=GENERIC_CARD_TYPE, minidriver=CARD_MINIDRIVER)]
    if setup.piv_minidriver:
        card_types.append(SmartCardType(name=PIV_CARD_TYPE, minidriver=CARD_MINIDRIVER))
    sign = machine.reboot_sign if setup.pending_reboot else None
    return Facts(
        schema_version=SCHEMA_VERSION,
        probe=ProbeInfo(
            marker=PROBE_MARKER,
            version=probe_version,
            duration_ms=machine.duration_ms,
            patterns=tuple(patterns),
        ),
        os=machine.os,
        products=kept,
        dotnet_release=setup.dotnet_release,
        services=_services(setup),
        smartcard_readers=machine.readers if setup.smartcard_reader else (),
        smartcard_types=tuple(card_types),
        cm_listening=bool(setup.cm_version) and machine.user_logged_on,
        pending_reboot=PendingReboot(
            component_based_servicing=sign == "component_based_servicing",
            windows_update=sign == "windows_update",
            file_rename_operations=sign == "file_rename_operations",
        ),
        browser_policies=_browser_policies(setup, machine),
    )


def probe_patterns(parameters: Mapping[str, object]) -> list[str]:
    """The probe's `Patterns` parameter (PowerShell binds parameter names case-insensitively)."""
    value = next((v for k, v in parameters.items() if k.casefold() == "patterns"), None)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


# What a runner may put after the one-line invocation, e.g. Ansible's raw over PSRP.
_EXIT_LINE = re.compile(r"^\s*exit(?:\s+(?:\$LASTEXITCODE|\d+))?\s*;?\s*$", re.IGNORECASE)


def _one_line_invocation(script: str) -> tuple[str, list[str]] | None:
    """The script and patterns of a probe sent as its one-line invocation (the form SSH feeds
    to stdin), when that is what a script amounts to: the line, then at most `exit` lines."""
    lines = [line for line in script.strip().splitlines() if line.strip()]
    if not lines or not all(_EXIT_LINE.match(line) for line in lines[1:]):
        return None
    return parse_stdin_invocation(lines[0])


def run_script(
    setup: Setup,
    machine: Machine,
    fault: Fault | None,
    script: str,
    parameters: Mapping[str, object],
) -> ScriptResult:
    """Run a script on a simulated host: the probe answers with the host's facts as one JSON
    document; anything else gets the error PowerShell would give."""
    marker = _PROBE_MARKER.search(script)
    if marker is None and (invocation := _one_line_invocation(script)) is not None:
        script, found = invocation
        parameters = {"Patterns": found}
        marker = _PROBE_MARKER.search(script)
    if marker is None:
        return _not_the_probe(script, machine)
    stated = _PROBE_VERSION.search(script)
    if fault is Fault.PROBE_EXCEPTION:
        return ScriptResult(error=REGISTRY_DENIED)
    try:
        document = facts(
            setup,
            machine,
            probe_patterns(parameters),
            probe_version=stated[1] if stated else marker[1],
        )
    except WildcardError:
        # PowerShell's own wording for a WildcardPatternException.
        bad = next(p for p in probe_patterns(parameters) if not _valid_wildcard(p))
        return ScriptResult(
            error=PowerShellError(
                message=f"The specified wildcard character pattern is not valid: {bad}",
                category="InvalidArgument",
                fully_qualified_error_id="RuntimeException",
                exception_type="System.Management.Automation.WildcardPatternException",
            )
        )
    text = document_json(document)
    if fault is Fault.MALFORMED_OUTPUT:
        # The document cut short, as when the probe's pipeline is interrupted mid-write.
        return ScriptResult(output=text[: len(text) * 3 // 5])
    if fault is Fault.OVERSIZED_OUTPUT:
        return ScriptResult(output=_oversized(document))
    return ScriptResult(output=text)


def document_json(document: Facts) -> str:
    """A facts document as the probe prints it: compact JSON, non-ASCII escaped as \\uXXXX."""
    return json.dumps(document.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=True)


def _oversized(document: Facts) -> str:
    """A well-formed document far over the parser's size limit (a registry full of junk)."""
    payload = document.model_dump(mode="json")
    junk = {
        "name": "NHS Spine Mini Service Provider Plug-in",
        "version": "1.0.0.0",
        "publisher": "NHS England",
        "install_date": "20240101",
        "view": "x86",
    }
    entry = len(json.dumps(junk)) + 2
    payload["products"] = [junk] * (4 * MAX_OUTPUT_BYTES // entry)
    return json.dumps(payload)


REGISTRY_DENIED = PowerShellError(
    message="Requested registry access is not allowed.",
    category="PermissionDenied",
    fully_qualified_error_id=(
        "System.Security.SecurityException,Microsoft.PowerShell.Commands.GetItemPropertyCommand"
    ),
    exception_type="System.Security.SecurityException",
)

_FIRST_WORD = re.compile(r"""^\s*[&.]?\s*(['"]?)([^\s'";|(){}]+)""")


def _not_the_probe(script: str, machine: Machine) -> ScriptResult:
    match = _FIRST_WORD.match(script)
    if match is None:
        return ScriptResult()  # an empty script prints nothing
    word = match[2][:200]
    if word.casefold() in ("hostname", "hostname.exe", "$env:computername"):
        return ScriptResult(output=machine.computer_name)
    return ScriptResult(error=command_not_found(word))


def command_not_found(word: str) -> PowerShellError:
    return PowerShellError(
        message=(
            f"The term '{word}' is not recognized as the name of a cmdlet, function, script file,"
            " or operable program. Check the spelling of the name, or if a path was included,"
            " verify that the path is correct and try again."
        ),
        category="ObjectNotFound",
        fully_qualified_error_id="CommandNotFoundException",
        exception_type="System.Management.Automation.CommandNotFoundException",
    )


def error_text(error: PowerShellError, command_line: str) -> str:
    """An error as powershell.exe writes it to stderr when its output is redirected."""
    shown = command_line.strip().splitlines()[0] if command_line.strip() else ""
    shown = shown[:100] + ("..." if len(shown) > 100 else "")
    short_type = error.exception_type.rsplit(".", 1)[-1]
    target = ""
    if error.fully_qualified_error_id == "CommandNotFoundException":
        word = error.message.split("'")[1] if error.message.count("'") >= 2 else ""
        target = f"{word}:String"
        prefix = f"{word} : "
    else:
        prefix = ""
    return (
        f"{prefix}{error.message}\r\n"
        "At line:1 char:1\r\n"
        f"+ {shown}\r\n"
        f"+ {'~' * max(1, min(len(shown), 40))}\r\n"
        f"    + CategoryInfo          : {error.category}: ({target}) [], {short_type}\r\n"
        f"    + FullyQualifiedErrorId : {error.fully_qualified_error_id}\r\n"
        "\r\n"
    )
