"""What the cmd shell and the PowerShell plugin share: identity, Create, Signal and Receive.

That includes waiting for output no longer than the request's OperationTimeout.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
from collections.abc import Iterable
from typing import ClassVar

from collectors.wsman_envelopes import RSP
from simulator import wsman
from simulator.behaviour import SimulatedHost

DONE = f"{RSP}/CommandState/Done"
RUNNING = f"{RSP}/CommandState/Running"
# Room the envelope around Receive streams takes (headers, CommandState, tags), in bytes.
ENVELOPE_OVERHEAD = 2048
STREAM_OVERHEAD = 120
# Windows deletes a shell nobody has used for IdleTimeOut (2 hours unless the client asks).
DEFAULT_IDLE_TIMEOUT = 7200.0
SHORTEST_IDLE_TIMEOUT = 60.0
LONGEST_IDLE_TIMEOUT = 12 * 3600.0


class Shell:
    """A shell on the simulated host; subclasses implement Command, Send and Receive, and what
    Signal's Ctrl+C and Terminate do to one of their commands."""

    input_streams = "stdin"
    output_streams = "stdout stderr"
    # The Signal code that interrupts a command; each kind of shell has its own spelling.
    ctrl_c: ClassVar[str]

    def __init__(
        self, shell_id: str, resource_uri: str, host: SimulatedHost, *, owner: str, client_ip: str
    ) -> None:
        self.shell_id = shell_id
        self.resource_uri = resource_uri
        self.host = host
        self.owner = owner
        self.client_ip = client_ip
        self.created = datetime.datetime.now(datetime.UTC)
        self.idle_timeout = DEFAULT_IDLE_TIMEOUT
        self.busy = 0  # operations in progress; an operation keeps the shell alive
        self.expiry: asyncio.TimerHandle | None = None

    def created_body(self, address: str) -> str:
        """The wxf:CreateResponse body: the new shell's address and its description."""
        shell_id = wsman.xml_text(self.shell_id)
        uri = wsman.xml_text(self.resource_uri)
        return (
            f"<x:ResourceCreated><a:Address>{wsman.xml_text(address)}</a:Address>"
            f"<a:ReferenceParameters><w:ResourceURI>{uri}</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
            f"</a:ReferenceParameters></x:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId>"
            f"<rsp:ResourceUri>{uri}</rsp:ResourceUri>"
            f"<rsp:Owner>{wsman.xml_text(self.owner)}</rsp:Owner>"
            f"<rsp:ClientIP>{wsman.xml_text(self.client_ip)}</rsp:ClientIP>"
            f"<rsp:IdleTimeOut>PT{self.idle_timeout:.3f}S</rsp:IdleTimeOut>"
            f"<rsp:InputStreams>{self.input_streams}</rsp:InputStreams>"
            f"<rsp:OutputStreams>{self.output_streams}</rsp:OutputStreams>"
            f"<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>"
            f"<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>"
        )

    def command(self, request: wsman.Request, script_run: float) -> str:
        """Start a command; returns its CommandId."""
        raise wsman.unsupported_action(request.action)

    def send(self, request: wsman.Request) -> None:
        raise wsman.unsupported_action(request.action)

    def signal(self, request: wsman.Request) -> None:
        """Signal a command: Ctrl+C interrupts it; Terminate, or any other code, releases it."""
        body = request.body
        command_id = body.get("CommandId") if body is not None else None
        code = (body.findtext(f"{{{RSP}}}Code") or "") if body is not None else ""
        if not command_id:
            raise wsman.invalid_parameter("Signal needs a CommandId.")
        if code.strip().casefold() == self.ctrl_c:
            self.interrupt(command_id)
        else:
            self.release(command_id)

    def interrupt(self, command_id: str) -> None:
        """Stop a command as Ctrl+C would; a fault when the shell has no such command."""
        raise wsman.unsupported_action(wsman.SIGNAL)

    def release(self, command_id: str) -> None:
        """Forget a command and what it has left to say; a fault when there is no such command."""
        raise wsman.unsupported_action(wsman.SIGNAL)

    async def receive(self, request: wsman.Request) -> str:
        """The ReceiveResponse body, waiting at most the request's OperationTimeout."""
        raise wsman.unsupported_action(request.action)

    def close(self) -> None:
        """Release what the shell holds (the shell was deleted or the host went away)."""


def idle_timeout(requested: str | None) -> float:
    """The IdleTimeOut a Create asks for (an xs:duration), within what Windows allows."""
    if not requested:
        return DEFAULT_IDLE_TIMEOUT
    seconds = wsman.parse_duration(requested, default=DEFAULT_IDLE_TIMEOUT, longest=None)
    return min(max(seconds, SHORTEST_IDLE_TIMEOUT), LONGEST_IDLE_TIMEOUT)


async def wait_until(ready_at: float, limit: float) -> None:
    """Sleep until `ready_at` (loop time), or fault with w:TimedOut if that is too far away."""
    loop = asyncio.get_running_loop()
    delay = ready_at - loop.time()
    if delay > limit:
        await asyncio.sleep(limit)
        raise wsman.timed_out()
    if delay > 0:
        await asyncio.sleep(delay)


def stream_budget(request: wsman.Request) -> int:
    """How many raw bytes of stream data fit in one ReceiveResponse for this client."""
    return max(1024, (request.max_envelope_size - ENVELOPE_OVERHEAD) * 3 // 4)


def stream_xml(name: str, data: bytes, command_id: str | None, *, end: bool = False) -> str:
    command = f" CommandId={wsman.xml_attr(command_id)}" if command_id else ""
    ending = ' End="true"' if end else ""
    payload = base64.b64encode(data).decode("ascii")
    return f'<rsp:Stream Name="{name}"{command}{ending}>{payload}</rsp:Stream>'


def receive_body(
    streams: Iterable[str], command_id: str | None, state: str | None, exit_code: int | None = None
) -> str:
    """A ReceiveResponse: the streams, then the command's state when there is a command."""
    parts = ["<rsp:ReceiveResponse>", *streams]
    if command_id is not None and state is not None:
        attribute = wsman.xml_attr(command_id)
        if exit_code is None:
            parts.append(f'<rsp:CommandState CommandId={attribute} State="{state}"/>')
        else:
            parts.append(
                f'<rsp:CommandState CommandId={attribute} State="{state}">'
                f"<rsp:ExitCode>{exit_code}</rsp:ExitCode></rsp:CommandState>"
            )
    parts.append("</rsp:ReceiveResponse>")
    return "".join(parts)
