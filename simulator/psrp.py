"""The PowerShell plugin's side of MS-PSRP: a runspace pool per shell and a pipeline per
command, speaking with pypsrp's own message, fragment and serializer classes."""

from __future__ import annotations

import asyncio
import base64
import binascii
import struct
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from pypsrp.complex_objects import (
    ComplexObject,
    ErrorRecord,
    GenericComplexObject,
    PSInvocationState,
)
from pypsrp.messages import (
    ApplicationPrivateData,
    Destination,
    Message,
    MessageType,
    PipelineOutput,
    PipelineState,
    RunspaceAvailability,
    RunspacePoolStateMessage,
    SessionCapability,
)
from pypsrp.powershell import Fragment
from pypsrp.serializer import Serializer, TaggedValue

from simulator import shells, wsman
from simulator.behaviour import PowerShellError, ScriptResult, SimulatedHost

POWERSHELL_URI = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
PS_CTRL_C = "powershell/signal/ctrl_c"
TERMINATE = f"{wsman.RSP}/signal/terminate"

# What Windows PowerShell 5.1 announces.
PROTOCOL_VERSION = "2.3"
PS_VERSION = "2.0"
SERIALIZATION_VERSION = "1.1.0.1"
PS_VERSION_TABLE: Mapping[str, object] = {
    "PSVersion": TaggedValue("Version", "5.1.19041.5247"),
    "PSEdition": "Desktop",
    "PSCompatibleVersions": [
        TaggedValue("Version", v) for v in ("1.0", "2.0", "3.0", "4.0", "5.0", "5.1.19041.5247")
    ],
    "BuildVersion": TaggedValue("Version", "10.0.19041.5247"),
    "CLRVersion": TaggedValue("Version", "4.0.30319.42000"),
    "WSManStackVersion": TaggedValue("Version", "3.0"),
    "PSRemotingProtocolVersion": TaggedValue("Version", PROTOCOL_VERSION),
    "SerializationVersion": TaggedValue("Version", SERIALIZATION_VERSION),
}

_RUNSPACE_POOL_OPENED = 2
_HEADER = struct.Struct(">QQBI")
_ZERO = uuid.UUID(int=0)
# Windows' PowerShell plugin sends fragments of at most 32 KiB.
MAX_FRAGMENT = 32 * 1024
# Bounds on what one client may make a shell hold.
MAX_BUFFERED_INPUT = 16 * 1024 * 1024
MAX_PIPELINES = 1000
# ErrorCategory names as PowerShell numbers them.
ERROR_CATEGORIES = {
    name: number
    for number, name in enumerate(
        (
            "NotSpecified",
            "OpenError",
            "CloseError",
            "DeviceError",
            "DeadlockDetected",
            "InvalidArgument",
            "InvalidData",
            "InvalidOperation",
            "InvalidResult",
            "InvalidType",
            "MetadataError",
            "NotImplemented",
            "NotInstalled",
            "ObjectNotFound",
            "OperationStopped",
            "OperationTimeout",
            "SyntaxError",
            "ParserError",
            "PermissionDenied",
            "ResourceBusy",
            "ResourceExists",
            "ResourceUnavailable",
            "ReadError",
            "WriteError",
            "FromStdErr",
            "SecurityError",
            "ProtocolError",
            "ConnectionError",
            "AuthenticationError",
            "LimitsExceeded",
            "QuotaExceeded",
            "NotEnabled",
        )
    )
}


class PSRPError(Exception):
    """The client sent PSRP data the plugin cannot accept; the message says what."""


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    message_type: int
    rpid: uuid.UUID
    pid: uuid.UUID
    body: ET.Element | None


class Defragmenter:
    """Reassembles the client's fragments into messages, refusing anything malformed."""

    def __init__(self, limit: int = MAX_BUFFERED_INPUT) -> None:
        self._limit = limit
        self._partial: dict[int, tuple[int, bytearray]] = {}

    def feed(self, data: bytes) -> list[IncomingMessage]:
        messages = []
        offset = 0
        while offset < len(data):
            if len(data) - offset < _HEADER.size:
                raise PSRPError("truncated PSRP fragment header")
            object_id, fragment_id, flags, length = _HEADER.unpack_from(data, offset)
            offset += _HEADER.size
            if length > len(data) - offset:
                raise PSRPError("PSRP fragment longer than the data that carries it")
            payload = data[offset : offset + length]
            offset += length
            if flags & 0x1:
                if fragment_id != 0:
                    raise PSRPError("a first PSRP fragment must have fragment id 0")
                buffer = bytearray()
            else:
                expected, buffer = self._partial.pop(object_id, (-1, bytearray()))
                if fragment_id != expected:
                    raise PSRPError(f"PSRP fragment {fragment_id} out of order for {object_id}")
            buffer += payload
            if sum(len(b) for _, b in self._partial.values()) + len(buffer) > self._limit:
                raise PSRPError("PSRP message larger than the plugin accepts")
            if flags & 0x2:
                messages.append(parse_message(bytes(buffer)))
            else:
                self._partial[object_id] = (fragment_id + 1, buffer)
        return messages


def parse_message(data: bytes) -> IncomingMessage:
    """Split a PSRP message into its header fields and its (safely parsed) CLIXML body."""
    if len(data) < 40:
        raise PSRPError("PSRP message shorter than its header")
    _destination, message_type = struct.unpack_from("<II", data)
    rpid = uuid.UUID(bytes_le=data[8:24])
    pid = uuid.UUID(bytes_le=data[24:40])
    text = data[40:]
    if text.startswith(b"\xef\xbb\xbf"):
        text = text[3:]
    body = None
    if text.strip():
        try:
            body = SafeET.fromstring(text, forbid_dtd=True)
        except (ET.ParseError, DefusedXmlException, ValueError) as exc:
            raise PSRPError(f"PSRP message body is not valid CLIXML: {exc}") from exc
    return IncomingMessage(message_type, rpid, pid, body)


@dataclass(slots=True)
class Invocation:
    """One command of a pipeline statement: a cmdlet or a script, with its arguments."""

    name: str
    is_script: bool
    named: dict[str, object] = field(default_factory=dict)
    positional: list[object] = field(default_factory=list)

    def argument(self, name: str) -> object | None:
        for key, value in self.named.items():
            if key.casefold() == name.casefold():
                return value
        return None


def read_pipeline(body: ET.Element) -> tuple[list[list[Invocation]], bool]:
    """The statements of a CREATE_PIPELINE message, and whether it takes no input.

    pypsrp cannot deserialize this message server-side, so the CLIXML is walked here and
    only the argument values go through pypsrp's Serializer.
    """
    serializer = Serializer()
    # TNRef elements may point at a type list defined anywhere earlier in the message.
    for tn in body.iter("TN"):
        serializer.tn[tn.get("RefId", "")] = [t.text or "" for t in tn.findall("T")]
    no_input = (body.findtext("MS/B[@N='NoInput']") or "true").lower() == "true"
    powershell = body.find("MS/Obj[@N='PowerShell']/MS")
    if powershell is None:
        raise PSRPError("CREATE_PIPELINE has no PowerShell object")
    statements = []
    extra = powershell.findall("Obj[@N='ExtraCmds']/LST/Obj")
    for statement in extra or [powershell]:
        commands = statement.findall("Obj[@N='Cmds']/LST/Obj") or statement.findall(
            "MS/Obj[@N='Cmds']/LST/Obj"
        )
        statements.append([_read_command(command, serializer) for command in commands])
    if not any(statements):
        raise PSRPError("CREATE_PIPELINE has no commands")
    return statements, no_input


def _read_command(element: ET.Element, serializer: Serializer) -> Invocation:
    cmd = element.find("MS/S[@N='Cmd']")
    if cmd is None:
        raise PSRPError("a pipeline command has no Cmd")
    name = serializer.deserialize(cmd, clear=False)
    is_script = (element.findtext("MS/B[@N='IsScript']") or "false").lower() == "true"
    invocation = Invocation(str(name), is_script)
    for argument in element.findall("MS/Obj[@N='Args']/LST/Obj"):
        key = argument.find("MS/*[@N='N']")
        value = argument.find("MS/*[@N='V']")
        try:
            decoded = serializer.deserialize(value, clear=False) if value is not None else None
        except (KeyError, ValueError, TypeError, AttributeError, RecursionError) as exc:
            raise PSRPError(f"cannot read the value of a pipeline argument: {exc!r}") from exc
        if key is None or key.tag == "Nil":
            invocation.positional.append(decoded)
        else:
            invocation.named[str(serializer.deserialize(key, clear=False))] = decoded
    return invocation


def script_of(invocation: Invocation) -> tuple[str, dict[str, object]]:
    """The script text and parameters an invocation amounts to."""
    if invocation.is_script:
        parameters = dict(invocation.named)
        if invocation.positional:
            parameters["args"] = list(invocation.positional)
        return invocation.name, parameters
    if invocation.name.casefold() in ("invoke-expression", "iex"):
        # pypsrp's execute_ps runs the script through Invoke-Expression -Command.
        command = invocation.argument("Command")
        if command is None and invocation.positional:
            command = invocation.positional[0]
        return str(command or ""), {}
    words = [invocation.name]
    for key, value in invocation.named.items():
        words.append(f"-{key}" if value is None else f"-{key} {_literal(value)}")
    words.extend(_literal(value) for value in invocation.positional)
    return " ".join(words), dict(invocation.named)


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "@(" + ",".join(_literal(v) for v in value) + ")"
    return "'" + str(value).replace("'", "''") + "'"


def error_record(error: PowerShellError) -> ErrorRecord:
    """The ErrorRecord a Windows host serialises for a terminating error."""
    exception = GenericComplexObject()
    exception.types = [error.exception_type, "System.SystemException", "System.Exception"]
    exception.types.append("System.Object")
    exception.to_string = error.message
    exception.adapted_properties = {
        "Message": error.message,
        "HResult": -2146233087,
        "Source": "System.Management.Automation",
    }
    category = ERROR_CATEGORIES.get(error.category, 0)
    reason = error.exception_type.rsplit(".", 1)[-1]
    record = ErrorRecord(  # type: ignore[no-untyped-call]
        exception=exception,
        invocation=False,
        fq_error=error.fully_qualified_error_id,
        category=category,
        activity="",
        reason=reason,
        target_name="",
        target_type="",
        message=f"{error.category}: (:) [], {reason}",
    )
    # pypsrp's ErrorRecord lists properties its constructor never sets.
    for name, _ in record._extended_properties:
        if not hasattr(record, name):
            setattr(record, name, None)
    record.extended_info_present = False
    record._to_string = error.message  # type: ignore[assignment]
    return record


class Outbox:
    """Messages waiting for the client's Receive, already cut into fragments."""

    def __init__(self) -> None:
        self.fragments: deque[bytes] = deque()

    def take(self, budget: int) -> list[bytes]:
        """As many fragments as fit in `budget` raw bytes (at least one, so output moves)."""
        taken: list[bytes] = []
        used = 0
        while self.fragments:
            size = len(self.fragments[0]) + shells.STREAM_OVERHEAD
            if taken and used + size > budget:
                break
            taken.append(self.fragments.popleft())
            used += size
        return taken


class Pipeline:
    """One PowerShell pipeline (a WinRS command of the PowerShell plugin)."""

    def __init__(self, command_id: str, script_run: float) -> None:
        self.command_id = command_id
        self.pid: uuid.UUID | None = None
        self.script_run = script_run
        self.statements: list[list[Invocation]] | None = None
        self.awaiting_input = False
        self.ready_at = 0.0
        self.ran = False
        self.finished = False
        self.outbox = Outbox()

    @property
    def startable(self) -> bool:
        return self.statements is not None and not self.awaiting_input


class PowerShellShell(shells.Shell):
    """A runspace pool: the shell the PowerShell plugin creates for each client pool."""

    input_streams = "stdin pr"
    output_streams = "stdout"

    def __init__(
        self,
        host: SimulatedHost,
        *,
        shell_id: str | None,
        creation_xml: str,
        owner: str,
        client_ip: str,
    ) -> None:
        self._serializer = Serializer()
        self._inbox = Defragmenter()
        self._next_object_id = 1
        self._pool_outbox = Outbox()
        self._pool_waiter: asyncio.Event | None = None
        self._pipelines: dict[str, Pipeline] = {}
        self.rpid = _ZERO
        self._open(creation_xml)
        super().__init__(
            shell_id or str(self.rpid).upper(),
            POWERSHELL_URI,
            host,
            owner=owner,
            client_ip=client_ip,
        )

    def _open(self, creation_xml: str) -> None:
        try:
            data = base64.b64decode(creation_xml, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PSRPError("creationXml is not base64") from exc
        messages = self._inbox.feed(data)
        kinds = [m.message_type for m in messages]
        if kinds != [MessageType.SESSION_CAPABILITY, MessageType.INIT_RUNSPACEPOOL]:
            raise PSRPError("creationXml must hold SESSION_CAPABILITY then INIT_RUNSPACEPOOL")
        self.rpid = messages[1].rpid
        self._max_runspaces = _int(messages[1].body, "MS/I32[@N='MaxRunspaces']", 1)
        self._queue(
            self._pool_outbox,
            SessionCapability(PROTOCOL_VERSION, PS_VERSION, SERIALIZATION_VERSION),
        )
        self._queue(
            self._pool_outbox,
            ApplicationPrivateData(data={"PSVersionTable": PS_VERSION_TABLE}),  # type: ignore[no-untyped-call]
        )
        opened = RunspacePoolStateMessage(state=_RUNSPACE_POOL_OPENED)  # type: ignore[no-untyped-call]
        self._queue(self._pool_outbox, opened)

    # --- WinRS operations --------------------------------------------------------------

    def command(self, request: wsman.Request, script_run: float) -> str:
        line = request.body
        if line is None or line.tag != f"{{{wsman.RSP}}}CommandLine":
            raise wsman.invalid_xml("(Command needs a CommandLine)")
        if len(self._pipelines) >= MAX_PIPELINES:
            raise wsman.invalid_parameter("The shell holds too many commands.")
        command_id = (line.get("CommandId") or str(uuid.uuid4())).upper()
        pipeline = Pipeline(command_id, script_run)
        self._pipelines[command_id] = pipeline
        arguments = line.findtext(f"{{{wsman.RSP}}}Arguments") or ""
        self._deliver(_decode(arguments), pipeline)
        return command_id

    def send(self, request: wsman.Request) -> None:
        if request.body is None:
            raise wsman.invalid_xml("(Send needs a body)")
        for stream in request.body.iterfind(f"{{{wsman.RSP}}}Stream"):
            command_id = stream.get("CommandId")
            pipeline = self._pipeline(command_id) if command_id else None
            self._deliver(_decode(stream.text or ""), pipeline)

    def signal(self, request: wsman.Request) -> None:
        body = request.body
        command_id = body.get("CommandId") if body is not None else None
        code = (body.findtext(f"{{{wsman.RSP}}}Code") or "") if body is not None else ""
        if not command_id:
            raise wsman.invalid_parameter("Signal needs a CommandId.")
        pipeline = self._pipeline(command_id)
        if code.strip().casefold() == PS_CTRL_C:
            self._stop(pipeline)
        else:
            # Terminate (and anything else) releases the command.
            self._pipelines.pop(pipeline.command_id, None)

    async def receive(self, request: wsman.Request) -> str:
        body = request.body
        desired = body.find(f"{{{wsman.RSP}}}DesiredStream") if body is not None else None
        command_id = desired.get("CommandId") if desired is not None else None
        if not command_id:
            return await self._receive_pool(request)
        pipeline = self._pipeline(command_id)
        if not pipeline.ran:
            if not pipeline.startable:
                await asyncio.sleep(request.operation_timeout)
                raise wsman.timed_out()
            await shells.wait_until(pipeline.ready_at, request.operation_timeout)
            if not pipeline.ran:
                self._run(pipeline, request)
        fragments = pipeline.outbox.take(shells.stream_budget(request))
        streams = [shells.stream_xml("stdout", f, pipeline.command_id) for f in fragments]
        done = pipeline.finished and not pipeline.outbox.fragments
        return shells.receive_body(streams, pipeline.command_id, shells.DONE if done else None)

    async def _receive_pool(self, request: wsman.Request) -> str:
        if not self._pool_outbox.fragments:
            self._pool_waiter = self._pool_waiter or asyncio.Event()
            try:
                await asyncio.wait_for(self._pool_waiter.wait(), request.operation_timeout)
            except TimeoutError:
                raise wsman.timed_out() from None
            finally:
                self._pool_waiter = None
        fragments = self._pool_outbox.take(shells.stream_budget(request))
        return shells.receive_body(
            (shells.stream_xml("stdout", f, None) for f in fragments), None, None
        )

    def close(self) -> None:
        self._pipelines.clear()
        self._pool_outbox.fragments.clear()

    # --- PSRP --------------------------------------------------------------------------

    def _pipeline(self, command_id: str) -> Pipeline:
        pipeline = self._pipelines.get(command_id.upper())
        if pipeline is None:
            raise wsman.invalid_parameter(f"The command {command_id} was not found in the shell.")
        return pipeline

    def _deliver(self, data: bytes, pipeline: Pipeline | None) -> None:
        """Act on the complete messages the client's data finishes."""
        for message in self._inbox.feed(data):
            target = pipeline or self._by_pid(message.pid)
            kind = message.message_type
            if (
                kind == MessageType.CREATE_PIPELINE
                and target is not None
                and message.body is not None
            ):
                if target.statements is not None:
                    raise PSRPError("a command carries a second CREATE_PIPELINE")
                target.pid = message.pid
                target.statements, no_input = read_pipeline(message.body)
                target.awaiting_input = not no_input
                target.ready_at = asyncio.get_running_loop().time() + target.script_run
            elif kind == MessageType.END_OF_PIPELINE_INPUT and target is not None:
                target.awaiting_input = False
                target.ready_at = asyncio.get_running_loop().time() + target.script_run
            elif kind in (MessageType.SET_MAX_RUNSPACES, MessageType.SET_MIN_RUNSPACES):
                ci = _int(message.body, "MS/I64[@N='CI']", 0)
                self._answer_pool(_availability(True, ci))
            elif kind == MessageType.GET_AVAILABLE_RUNSPACES:
                ci = _int(message.body, "MS/I64[@N='ci']", 0)
                busy = sum(1 for p in self._pipelines.values() if p.startable and not p.finished)
                free = max(self._max_runspaces - busy, 0)
                self._answer_pool(_availability(free, ci))
            # Other messages (pipeline input, host responses, key exchange) need no answer
            # from a host that runs only non-interactive scripts.

    def _by_pid(self, pid: uuid.UUID) -> Pipeline | None:
        if pid == _ZERO:
            return None
        return next((p for p in self._pipelines.values() if p.pid == pid), None)

    def _answer_pool(self, message: ComplexObject) -> None:
        self._queue(self._pool_outbox, message)
        if self._pool_waiter is not None:
            self._pool_waiter.set()

    def _run(self, pipeline: Pipeline, request: wsman.Request) -> None:
        pipeline.ran = True
        outputs, error = self._execute(pipeline.statements or [])
        fragment_size = min(MAX_FRAGMENT, shells.stream_budget(request) - _HEADER.size)
        for text in outputs:
            output = PipelineOutput()
            message = Message(
                Destination.CLIENT, str(self.rpid), str(pipeline.pid), output, self._serializer
            )
            # pypsrp packs PIPELINE_OUTPUT only for clients: hand Message the CLIXML directly.
            message.data = self._serializer.serialize(text)  # type: ignore[assignment]
            self._cut(pipeline.outbox, message.pack(), fragment_size)
        if error is None:
            state = _pipeline_state(PSInvocationState.COMPLETED, None)
        else:
            state = _pipeline_state(PSInvocationState.FAILED, error)
        self._queue(pipeline.outbox, state, pipeline, fragment_size)
        pipeline.finished = True

    def _execute(
        self, statements: list[list[Invocation]]
    ) -> tuple[list[str], PowerShellError | None]:
        """Run each statement's script on the host and shape its output as PowerShell would."""
        outputs: list[str] = []
        for statement in statements:
            names = [c.name.casefold() for c in statement if not c.is_script]
            if "out-null" in names:
                # Statements piped to Out-Null only have side effects, which the simulated
                # host does not model (pypsrp uses them to set environment variables).
                continue
            script, parameters = script_of(statement[0])
            result: ScriptResult = self.host.run_script(script, parameters)
            text = result.output.replace("\r\n", "\n")
            out_string = next((c for c in statement[1:] if c.name.casefold() == "out-string"), None)
            if out_string is not None and "stream" in {k.casefold() for k in out_string.named}:
                outputs.extend(text.splitlines())
            elif out_string is not None:
                outputs.append(text if text.endswith("\n") else text + "\n")
            elif text:
                outputs.append(text.rstrip("\n"))
            if result.error is not None:
                return outputs, result.error
        return outputs, None

    def _stop(self, pipeline: Pipeline) -> None:
        if pipeline.finished:
            return
        pipeline.ran = pipeline.finished = True
        stopped = PowerShellError(
            "The pipeline has been stopped.",
            category="OperationStopped",
            fully_qualified_error_id="PipelineStopped",
            exception_type="System.Management.Automation.PipelineStoppedException",
        )
        self._queue(pipeline.outbox, _pipeline_state(PSInvocationState.STOPPED, stopped), pipeline)

    def _queue(
        self,
        outbox: Outbox,
        message: ComplexObject,
        pipeline: Pipeline | None = None,
        fragment_size: int = MAX_FRAGMENT,
    ) -> None:
        pid = str(pipeline.pid) if pipeline is not None and pipeline.pid else None
        packed = Message(Destination.CLIENT, str(self.rpid), pid, message, self._serializer).pack()
        self._cut(outbox, packed, fragment_size)

    def _cut(self, outbox: Outbox, packed: bytes, fragment_size: int) -> None:
        object_id = self._next_object_id
        self._next_object_id += 1
        chunks = [packed[i : i + fragment_size] for i in range(0, len(packed), fragment_size)]
        for index, chunk in enumerate(chunks or [b""]):
            fragment = Fragment(object_id, index, chunk, index == 0, index == len(chunks) - 1)
            outbox.fragments.append(fragment.pack())


def _pipeline_state(state: int, error: PowerShellError | None) -> ComplexObject:
    record = error_record(error) if error is not None else None
    message: ComplexObject = PipelineState(state=state, error_record=record)  # type: ignore[no-untyped-call]
    return message


def _availability(response: bool | int, ci: int) -> ComplexObject:
    message: ComplexObject = RunspaceAvailability(response=response, ci=ci)  # type: ignore[no-untyped-call]
    return message


def _decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PSRPError("PSRP data is not base64") from exc


def _int(body: ET.Element | None, path: str, default: int) -> int:
    try:
        return int(body.findtext(path) or default) if body is not None else default
    except ValueError:
        return default
