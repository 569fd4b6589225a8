"""The facts the cmscan probe reports about one Windows host, and the parser for its output."""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Bump when the document's shape changes incompatibly; the parser refuses other versions
# so that a stale probe on one side and a new parser on the other never guess.
SCHEMA_VERSION = 1

# The probe carries this marker in its source and echoes it in its output, which is how
# the simulator (and a curious Windows admin reading logs) recognises the cmscan probe.
PROBE_MARKER = "cmscan-probe"

# A real document is a few KiB; anything this large is hostile or broken.
MAX_OUTPUT_BYTES = 256 * 1024

# Services whose state the probe reports: the Windows smart card stack (resource manager,
# certificate propagation, device enumeration).
WATCHED_SERVICES = ("SCardSvr", "CertPropSvc", "ScDeviceEnum")

# Control characters and unpaired UTF-16 surrogates: registry strings may hold them, but
# PostgreSQL cannot store NUL or a lone surrogate, and terminals act on control sequences.
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class _Model(BaseModel):
    # Unknown keys are ignored so a newer probe of the same schema version can add fields;
    # frozen because facts are evidence and are never edited after collection.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Product(_Model):
    """One Add/Remove Programs entry from a registry Uninstall key."""

    name: str
    version: str | None = None
    publisher: str | None = None
    install_date: str | None = None  # as Windows stores it, usually YYYYMMDD
    view: Literal["x64", "x86"]  # x86 is the WOW6432Node (32-bit) view


class Service(_Model):
    """State of one Windows service; `present` is false when the service does not exist."""

    name: str
    present: bool
    state: str | None = None  # Running, Stopped, Paused, ...
    start_type: str | None = None  # Automatic, Manual, Disabled


class SmartCardType(_Model):
    """A registered smart-card type under Calais\\SmartCards."""

    name: str
    minidriver: str | None = None  # the "80000001" value: the card's minidriver DLL


class BrowserCookiePolicy(_Model):
    """Machine policy for third-party cookies in one browser."""

    browser: Literal["chrome", "edge"]
    block_third_party_cookies: bool | None = None  # None: the policy is not set
    cookies_allowed_for_urls: tuple[str, ...] = ()


class PendingReboot(_Model):
    """Windows' three usual signs that an install waits for a reboot."""

    component_based_servicing: bool = False
    windows_update: bool = False
    file_rename_operations: bool = False

    @property
    def pending(self) -> bool:
        return self.component_based_servicing or self.windows_update or self.file_rename_operations


class OperatingSystem(_Model):
    caption: str | None = None
    version: str | None = None
    build: str | None = None


class ProbeInfo(_Model):
    """What the probe says about itself."""

    marker: Literal["cmscan-probe"]
    version: str
    duration_ms: int = Field(ge=0)
    # The product name patterns the probe filtered by: a product outside them cannot
    # appear in `products`, which the policy engine needs to know before re-grading.
    patterns: tuple[str, ...] = ()
    # What the probe could not read (a missing WMI class, an unreadable key): the facts
    # it reports are still true, but a reader should know where they are incomplete.
    warnings: tuple[str, ...] = ()


class Facts(_Model):
    """Everything one probe run saw on one host."""

    schema_version: int
    probe: ProbeInfo
    os: OperatingSystem = OperatingSystem()
    products: tuple[Product, ...] = ()
    dotnet_release: int | None = None  # NDP\v4\Full Release; None when .NET 4.x is absent
    services: tuple[Service, ...] = ()
    smartcard_readers: tuple[str, ...] = ()
    smartcard_types: tuple[SmartCardType, ...] = ()
    cm_listening: bool | None = None  # TCP 43485 listening; None when the probe could not tell
    pending_reboot: PendingReboot = PendingReboot()
    browser_policies: tuple[BrowserCookiePolicy, ...] = ()

    def service(self, name: str) -> Service | None:
        """The named service's entry (case-insensitive), or None when it was not reported."""
        folded = name.casefold()
        return next((s for s in self.services if s.name.casefold() == folded), None)


class ProbeOutputError(ValueError):
    """The probe's output is not a facts document this parser accepts; `reason` is short."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _clean(value: object) -> object:
    """The decoded document with every unsafe character in its strings replaced by U+FFFD."""
    if isinstance(value, str):
        return _UNSAFE_CHARACTERS.sub("\ufffd", value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    return value


def parse_probe_output(output: str | bytes) -> Facts:
    """Parse one probe output document, or raise ProbeOutputError saying why not.

    Control characters and unpaired surrogates in its strings become U+FFFD, so that the
    facts can always be stored, exported and printed.
    """
    raw = output.encode("utf-8", "surrogatepass") if isinstance(output, str) else output
    if len(raw) > MAX_OUTPUT_BYTES:
        raise ProbeOutputError(f"output of {len(raw)} bytes exceeds the {MAX_OUTPUT_BYTES} limit")
    text = raw.decode("utf-8-sig", "replace").strip()
    if not text:
        raise ProbeOutputError("empty output")
    try:
        document = _clean(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ProbeOutputError(f"malformed JSON at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError:
        # json (and _clean) recurse per nesting level; a hostile document fits in the size cap.
        raise ProbeOutputError("malformed JSON: nested too deeply") from None
    except ValueError:
        # An integer of more digits than Python converts (sys.get_int_max_str_digits).
        raise ProbeOutputError("malformed JSON: a number is too long") from None
    if not isinstance(document, dict):
        raise ProbeOutputError(f"expected a JSON object, got {type(document).__name__}")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        shown = repr(version) if len(repr(version)) <= 40 else repr(version)[:39] + "…"
        raise ProbeOutputError(f"unknown schema version {shown} (expected {SCHEMA_VERSION})")
    try:
        return Facts.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise ProbeOutputError(
            f"invalid facts: {where}: {first['msg']} ({exc.error_count()} problem(s))"
        ) from exc


def facts_to_json(facts: Facts) -> str:
    """The canonical JSON form stored in the database and served by the API."""
    return facts.model_dump_json()
