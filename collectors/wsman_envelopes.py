"""WS-Management envelopes for a PowerShell shell (MS-WSMV): the requests, and reading replies.

Requests are written from templates (only identifiers and base64 are substituted, all
escaped); replies are parsed with defusedxml because the host chooses their bytes.
"""

from __future__ import annotations

import base64
import binascii
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

S = "http://www.w3.org/2003/05/soap-envelope"
A = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
W = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
P = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
X = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
RSP = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
FAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
POWERSHELL = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

CREATE = f"{X}/Create"
DELETE = f"{X}/Delete"
COMMAND = f"{RSP}/Command"
RECEIVE = f"{RSP}/Receive"
DONE = f"{RSP}/CommandState/Done"

# Windows' "operation timed out, poll again": a Receive with nothing to say yet.
OPERATION_TIMEOUT_FAULT = 2150858793
# The PSRP protocol version Windows PowerShell 5.1 speaks; sent as the Create option.
PROTOCOL_VERSION = "2.3"


class EnvelopeError(Exception):
    """A reply that is not the WS-Management envelope it should be; the message says how."""


class WSManFaultError(Exception):
    """The host answered a request with a WS-Management fault."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"WS-Management fault {code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Request:
    """What every envelope to one host shares: where it goes and how long it may wait."""

    to: str
    session_id: str
    max_envelope_size: int

    def envelope(
        self,
        action: str,
        body: str,
        *,
        shell_id: str | None = None,
        options: str = "",
        timeout_s: float = 20,
    ) -> bytes:
        selectors = (
            f'<w:SelectorSet><w:Selector Name="ShellId">{escape(shell_id)}</w:Selector>'
            "</w:SelectorSet>"
            if shell_id is not None
            else ""
        )
        return (
            f'<s:Envelope xmlns:s="{S}" xmlns:a="{A}" xmlns:w="{W}" xmlns:p="{P}" '
            f'xmlns:rsp="{RSP}"><s:Header>'
            f'<a:Action s:mustUnderstand="true">{action}</a:Action>'
            '<p:DataLocale s:mustUnderstand="false" xml:lang="en-US"/>'
            '<w:Locale s:mustUnderstand="false" xml:lang="en-US"/>'
            f'<w:MaxEnvelopeSize s:mustUnderstand="true">{self.max_envelope_size}'
            "</w:MaxEnvelopeSize>"
            f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
            f"<w:OperationTimeout>PT{max(timeout_s, 0.001):.3f}S</w:OperationTimeout>"
            f'<a:ReplyTo><a:Address s:mustUnderstand="true">{ANONYMOUS}</a:Address>'
            "</a:ReplyTo>"
            f'<w:ResourceURI s:mustUnderstand="true">{POWERSHELL}</w:ResourceURI>'
            f'<p:SessionId s:mustUnderstand="false">uuid:{self.session_id}</p:SessionId>'
            f"<a:To>{escape(self.to)}</a:To>{options}{selectors}"
            f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
        ).encode()

    def create_shell(self, shell_id: str, creation: bytes, idle_timeout_s: int) -> bytes:
        """Create the runspace pool's shell; `creation` carries the pool's opening messages."""
        options = (
            '<w:OptionSet s:mustUnderstand="true">'
            f'<w:Option Name="protocolversion" MustComply="true">{PROTOCOL_VERSION}</w:Option>'
            "</w:OptionSet>"
        )
        body = (
            f"<rsp:Shell ShellId={quoteattr(shell_id)}>"
            "<rsp:InputStreams>stdin pr</rsp:InputStreams>"
            "<rsp:OutputStreams>stdout</rsp:OutputStreams>"
            f"<rsp:IdleTimeOut>PT{idle_timeout_s}S</rsp:IdleTimeOut>"
            '<creationXml xmlns="http://schemas.microsoft.com/powershell">'
            f"{_b64(creation)}</creationXml></rsp:Shell>"
        )
        return self.envelope(CREATE, body, options=options)

    def command(self, shell_id: str, command_id: str, arguments: bytes) -> bytes:
        """Start a pipeline: its id and its first PSRP fragments ride on the Command."""
        body = (
            f"<rsp:CommandLine CommandId={quoteattr(command_id)}><rsp:Command></rsp:Command>"
            f"<rsp:Arguments>{_b64(arguments)}</rsp:Arguments></rsp:CommandLine>"
        )
        return self.envelope(COMMAND, body, shell_id=shell_id)

    def receive(self, shell_id: str, command_id: str | None, timeout_s: float) -> bytes:
        attribute = f" CommandId={quoteattr(command_id)}" if command_id else ""
        body = (
            f"<rsp:Receive><rsp:DesiredStream{attribute}>stdout</rsp:DesiredStream></rsp:Receive>"
        )
        return self.envelope(RECEIVE, body, shell_id=shell_id, timeout_s=timeout_s)

    def delete(self, shell_id: str) -> bytes:
        return self.envelope(DELETE, "", shell_id=shell_id)


@dataclass(frozen=True, slots=True)
class Received:
    """A ReceiveResponse: the stdout data in order, and whether the command is done."""

    data: list[bytes]
    done: bool


def reply_body(status: int, data: bytes) -> ET.Element:
    """The Body's first element of a 200 reply; a 500 reply's fault is raised."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise EnvelopeError(f"the reply is not XML ({type(exc).__name__})") from exc
    body = root.find(f"{{{S}}}Body")
    if root.tag != f"{{{S}}}Envelope" or body is None:
        raise EnvelopeError("the reply is not a SOAP envelope")
    fault = body.find(f"{{{S}}}Fault")
    if fault is not None or status != 200:
        raise _fault(fault)
    first = next(iter(body), None)
    if first is None:
        return ET.Element(f"{{{S}}}Empty")
    return first


def created_shell_id(body: ET.Element) -> str:
    shell_id = body.findtext(f"{{{RSP}}}ShellId") or ""
    if body.tag == f"{{{X}}}ResourceCreated" or not shell_id:
        selector = body.find(f".//{{{W}}}Selector[@Name='ShellId']")
        shell_id = (selector.text or "") if selector is not None else shell_id
    shell_id = shell_id.strip()
    if not shell_id or len(shell_id) > 100:
        raise EnvelopeError("the Create reply names no shell")
    return shell_id


def received(body: ET.Element, command_id: str | None) -> Received:
    if body.tag != f"{{{RSP}}}ReceiveResponse":
        raise EnvelopeError(f"expected a ReceiveResponse, got {_local(body.tag)}")
    data = [_stream(stream) for stream in _streams(body.iterfind(f"{{{RSP}}}Stream"), command_id)]
    state = body.find(f"{{{RSP}}}CommandState")
    done = state is not None and state.get("State") == DONE
    return Received(data, done)


def _streams(streams: Iterable[ET.Element], command_id: str | None) -> Iterable[ET.Element]:
    for stream in streams:
        if stream.get("Name") != "stdout":
            continue
        owner = stream.get("CommandId")
        if command_id is not None and owner is not None and owner.upper() != command_id.upper():
            continue
        yield stream


def _stream(stream: ET.Element) -> bytes:
    try:
        return base64.b64decode((stream.text or "").strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError("a stream in the reply is not base64") from exc


def _fault(fault: ET.Element | None) -> WSManFaultError:
    if fault is None:
        return WSManFaultError(None, "HTTP 500 without a fault")
    detail = fault.find(f".//{{{FAULT}}}WSManFault")
    code: int | None = None
    message = ""
    if detail is not None:
        try:
            code = int(detail.get("Code") or "")
        except ValueError:
            code = None
        message = "".join(detail.itertext()).strip()
    if not message:
        reason = fault.find(f"{{{S}}}Reason")
        message = "".join(reason.itertext()).strip() if reason is not None else ""
    return WSManFaultError(code, message or "no details")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1][:60]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
