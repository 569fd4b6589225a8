"""WS-Management envelopes as a Windows WinRM service reads and writes them, and its faults."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

# The protocol's namespaces (and, where the simulator handles them, the actions the client
# sends) are the client's own constants: facts of WS-Management, not something the simulated
# server could disagree with it on.
from collectors.wsman_envelopes import ANONYMOUS, RSP, A, P, S, W, X
from collectors.wsman_envelopes import FAULT as WSMANFAULT

SEND = f"{RSP}/Send"
SIGNAL = f"{RSP}/Signal"
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"

# Windows' defaults: MaxEnvelopeSizekb is 500, MaxTimeoutms 60 s; clients may ask for less.
DEFAULT_MAX_ENVELOPE = 153_600
LARGEST_ENVELOPE = 512_000
DEFAULT_OPERATION_TIMEOUT = 60.0
LONGEST_OPERATION_TIMEOUT = 3600.0

_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_ENVELOPE_OPEN = (
    f'<s:Envelope xml:lang="en-US" xmlns:s="{S}" xmlns:a="{A}" xmlns:x="{X}" '
    f'xmlns:w="{W}" xmlns:rsp="{RSP}" xmlns:p="{P}">'
)


class WSManError(Exception):
    """A WS-Management fault: HTTP 500 with a SOAP fault and Windows' WSManFault detail."""

    def __init__(
        self, code: str, subcode: str, reason: str, wsman_code: int, message: str = ""
    ) -> None:
        super().__init__(message or reason)
        self.code = code  # s:Sender or s:Receiver
        self.subcode = subcode  # e.g. w:TimedOut
        self.reason = reason  # the SOAP Reason text
        self.wsman_code = wsman_code  # the Windows error code clients key on
        self.message = message or reason  # the WSManFault Message


def timed_out() -> WSManError:
    text = (
        "The WS-Management service cannot complete the operation within the time specified "
        "in OperationTimeout.  "
    )
    return WSManError("s:Receiver", "w:TimedOut", text, 2150858793)


def shells_exceeded(limit: int) -> WSManError:
    """MaxShellsPerUser exceeded, worded as Windows words it."""
    return WSManError(
        "s:Sender",
        "w:QuotaLimit",
        "The WS-Management service cannot process the request. The maximum number of "
        "concurrent shells for this user has been exceeded. Close existing shells or raise "
        "the quota for this user. ",
        2150859173,
        f"The WS-Management service cannot process the request. This user is allowed a "
        f"maximum number of {limit} concurrent shells, which has been exceeded. Close existing "
        f"shells or raise the quota for this user. ",
    )


def shell_not_found(shell_id: str) -> WSManError:
    return WSManError(
        "s:Sender",
        "w:InvalidSelectors",
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the "
        "shell was not found on the server. Possible causes are: the specified ShellId is "
        "incorrect or the shell no longer exists on the server. Provide the correct ShellId or "
        "create a new shell and retry the operation. ",
        2150858843,
    )


def invalid_xml(detail: str) -> WSManError:
    return WSManError(
        "s:Sender",
        "w:SchemaValidationError",
        "The WS-Management service cannot process the request because the XML is invalid. "
        f"{detail}",
        2150858819,
    )


def invalid_resource(resource_uri: str) -> WSManError:
    return WSManError(
        "s:Sender",
        "w:InvalidResourceURI",
        "The WS-Management service cannot process the request. The resource URI "
        f"{resource_uri} was not found in the WS-Management catalog. ",
        2150858811,
    )


def unsupported_action(action: str) -> WSManError:
    return WSManError(
        "s:Sender",
        "a:ActionNotSupported",
        f"The WS-Management service cannot process the request. The action {action} is not "
        "supported by the service. ",
        2150858771,
    )


def invalid_parameter(detail: str) -> WSManError:
    return WSManError(
        "s:Sender",
        "w:InvalidParameter",
        f"The WS-Management service cannot process the request. {detail}",
        2150858810,
    )


@dataclass(frozen=True, slots=True)
class Request:
    """The parts of a WS-Management request the simulated service acts on."""

    action: str
    message_id: str
    resource_uri: str
    operation_timeout: float
    max_envelope_size: int
    selectors: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    body: ET.Element | None = None

    @property
    def shell_id(self) -> str | None:
        return self.selectors.get("ShellId")


def parse_request(data: bytes) -> Request:
    """Read an envelope; anything malformed raises the Fault Windows would answer with."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise invalid_xml(f"({type(exc).__name__}: {exc})") from exc
    if root.tag != f"{{{S}}}Envelope":
        raise invalid_xml("(the root element is not a SOAP 1.2 Envelope)")
    header = root.find(f"{{{S}}}Header")
    body = root.find(f"{{{S}}}Body")
    if header is None or body is None:
        raise invalid_xml("(the Envelope has no Header or no Body)")
    action = _text(header, f"{{{A}}}Action")
    message_id = _text(header, f"{{{A}}}MessageID")
    if not action or not message_id:
        raise invalid_xml("(the Header has no Action or no MessageID)")
    selectors = {
        element.get("Name", ""): (element.text or "").strip()
        for element in header.iterfind(f"{{{W}}}SelectorSet/{{{W}}}Selector")
    }
    options = {
        element.get("Name", ""): (element.text or "").strip()
        for element in header.iterfind(f"{{{W}}}OptionSet/{{{W}}}Option")
    }
    return Request(
        action=action,
        message_id=message_id,
        resource_uri=_text(header, f"{{{W}}}ResourceURI"),
        operation_timeout=parse_duration(_text(header, f"{{{W}}}OperationTimeout")),
        max_envelope_size=_envelope_size(_text(header, f"{{{W}}}MaxEnvelopeSize")),
        selectors=selectors,
        options=options,
        body=next(iter(body), None),
    )


def parse_duration(
    text: str,
    *,
    default: float = DEFAULT_OPERATION_TIMEOUT,
    longest: float | None = LONGEST_OPERATION_TIMEOUT,
) -> float:
    """Seconds in an xs:duration such as PT20S or PT20.000S; `default` if absent or invalid."""
    match = _DURATION.match(text.strip()) if text else None
    if match is None or match.group(0) in ("P", "PT"):
        return default
    seconds = (
        int(match["d"] or 0) * 86400
        + int(match["h"] or 0) * 3600
        + int(match["m"] or 0) * 60
        + float(match["s"] or 0)
    )
    return seconds if longest is None else min(seconds, longest)


def _envelope_size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        return DEFAULT_MAX_ENVELOPE
    return max(8192, min(size, LARGEST_ENVELOPE))


def _text(parent: ET.Element, tag: str) -> str:
    element = parent.find(tag)
    return (element.text or "").strip() if element is not None else ""


def envelope(request: Request, action: str, body: str) -> bytes:
    """A response envelope to `request` carrying `body` (already serialised XML)."""
    return (
        f"{_ENVELOPE_OPEN}<s:Header><a:Action>{action}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To>"
        f"<a:RelatesTo>{escape(request.message_id)}</a:RelatesTo></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def fault_envelope(fault: WSManError, machine: str, relates_to: str | None) -> bytes:
    """The fault envelope Windows returns (with HTTP 500)."""
    relates = f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>" if relates_to else ""
    return (
        f"{_ENVELOPE_OPEN}<s:Header><a:Action>{FAULT_ACTION}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To>{relates}</s:Header>"
        f"<s:Body><s:Fault><s:Code><s:Value>{fault.code}</s:Value>"
        f"<s:Subcode><s:Value>{fault.subcode}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)}</s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault xmlns:f="{WSMANFAULT}" Code="{fault.wsman_code}" '
        f"Machine={quoteattr(machine)}><f:Message>{escape(fault.message)}"
        f"</f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>"
    ).encode()


def xml_text(value: str) -> str:
    return escape(value)


def xml_attr(value: str) -> str:
    return quoteattr(value)
