"""The PowerShell plugin's side of MS-PSRP: runspace pools (shells) and pipelines (commands).

Messages are built with pypsrp's own message, fragment and serializer classes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from pypsrp.complex_objects import ComplexObject, PSInvocationState
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
from pypsrp.serializer import Serializer, TaggedValue

from collectors.wsman_envelopes import RSP
from simulator import shells, wsman
from simulator.behaviour import PowerShellError, ScriptResult, SimulatedHost
from simulator.psrp_pipeline import Invocation, error_record, read_pipeline, script_of
from simulator.psrp_wire import HEADER, MAX_FRAGMENT, Defragmenter, Outbox, PSRPError

POWERSHELL_URI = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
PS_CTRL_C = "powershell/signal/ctrl_c"

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
_ZERO = uuid.UUID(int=0)
# How many commands one shell may hold (Windows: MaxConcurrentCommandsPerShell).
MAX_PIPELINES = 1000


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
    ctrl_c = PS_CTRL_C

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
        if line is None or line.tag != f"{{{RSP}}}CommandLine":
            raise wsman.invalid_xml("(Command needs a CommandLine)")
        if len(self._pipelines) >= MAX_PIPELINES:
            raise wsman.invalid_parameter("The shell holds too many commands.")
        command_id = (line.get("CommandId") or str(uuid.uuid4())).upper()
        pipeline = Pipeline(command_id, script_run)
        self._pipelines[command_id] = pipeline
        arguments = line.findtext(f"{{{RSP}}}Arguments") or ""
        self._deliver(_decode(arguments), pipeline)
        return command_id

    def send(self, request: wsman.Request) -> None:
        if request.body is None:
            raise wsman.invalid_xml("(Send needs a body)")
        for stream in request.body.iterfind(f"{{{RSP}}}Stream"):
            command_id = stream.get("CommandId")
            pipeline = self._pipeline(command_id) if command_id else None
            self._deliver(_decode(stream.text or ""), pipeline)

    def interrupt(self, command_id: str) -> None:
        self._stop(self._pipeline(command_id))

    def release(self, command_id: str) -> None:
        self._pipelines.pop(self._pipeline(command_id).command_id, None)

    async def receive(self, request: wsman.Request) -> str:
        body = request.body
        desired = body.find(f"{{{RSP}}}DesiredStream") if body is not None else None
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
        fragment_size = min(MAX_FRAGMENT, shells.stream_budget(request) - HEADER.size)
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
        # Object ids number every message the pool sends, pipelines' included.
        outbox.append(self._next_object_id, packed, fragment_size)
        self._next_object_id += 1


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
