"""Run one PowerShell script in a fresh runspace pool over WS-Management, driving psrpcore.

psrpcore keeps the PSRP state (fragments, messages, pool and pipeline states) and does no
I/O; this module carries its payloads in the envelopes of `wsman_envelopes` over one
`WSManConnection`: Create (the pool's opening messages ride in creationXml), Receive until
the pool is open, Command (the pipeline), Receive until it ends, Delete.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psrpcore
from psrpcore.types import PSInvocationState, RunspacePoolState

from collectors import wsman_envelopes as envelopes
from collectors.psrp_pool import ReusingPool
from collectors.wsman_envelopes import WSManFaultError
from collectors.wsman_http import WSManConnection

log = logging.getLogger(__name__)

# Longest single Receive poll; the host answers sooner when it has something to say.
POLL_S = 20.0
_ENDED = (PSInvocationState.Completed, PSInvocationState.Failed, PSInvocationState.Stopped)


class ScriptFailedError(Exception):
    """The script ran but gave nothing usable; the message is the short reason."""


class OperationTimeoutError(Exception):
    """The script ran longer than the operation timeout."""


class PoolBrokenError(Exception):
    """The host could not open the runspace pool; the message says why if it said."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one run: output size, the script's own run time, and the shell's idle life."""

    max_output_bytes: int
    operation_s: float
    idle_timeout_s: int
    max_envelope_size: int = 153_600

    @property
    def fragment_size(self) -> int:
        # What fits in one envelope once base64 and the envelope around it are paid for.
        return (self.max_envelope_size - 4096) * 3 // 4


class ScriptRun:
    """One script in its own runspace pool; `run()` returns its output text."""

    def __init__(self, connection: WSManConnection, limits: Limits) -> None:
        self._connection = connection
        self._limits = limits
        self._request = envelopes.Request(
            to=connection.endpoint.url,
            session_id=str(uuid.uuid4()).upper(),
            max_envelope_size=limits.max_envelope_size,
        )
        self._pool = ReusingPool()
        self.shell_id: str | None = None  # set once the host has created the shell

    async def run(self, script: str, parameters: Mapping[str, Any]) -> str:
        await self._open()
        # The same script with the same parameters serialises to the same bytes.
        self._pool.pipeline_key = (script, repr(sorted(parameters.items())))
        shell = psrpcore.ClientPowerShell(self._pool)
        shell.add_script(script)
        for name, value in parameters.items():
            shell.add_parameter(name, value)
        shell.start()
        command_id = str(shell.pipeline_id).upper()
        assert self.shell_id is not None
        await self._post(
            self._request.command(self.shell_id, command_id, self._payload()), expect="Command"
        )
        return await self._outcome(shell, command_id)

    async def close(self) -> None:
        """Delete the shell (ending the pool and its pipelines) if the host created one."""
        if self.shell_id is not None:
            shell_id, self.shell_id = self.shell_id, None
            await self._post(self._request.delete(shell_id), expect="Delete")

    # --- the pool -------------------------------------------------------------------------

    async def _open(self) -> None:
        pool = self._pool
        pool.open()
        shell_id = str(pool.runspace_pool_id).upper()
        body = await self._post(
            self._request.create_shell(shell_id, self._payload(), self._limits.idle_timeout_s),
            expect="Create",
        )
        self.shell_id = envelopes.created_shell_id(body)
        while pool.state == RunspacePoolState.Opening:
            await self._receive(None, POLL_S, None)
        if pool.state != RunspacePoolState.Opened:
            raise PoolBrokenError(f"the runspace pool is {pool.state.name}")

    def _payload(self) -> bytes:
        payload = self._pool.data_to_send(self._limits.fragment_size)
        if payload is None:
            raise AssertionError("psrpcore had nothing to send")
        if self._pool.data_to_send(self._limits.fragment_size) is not None:
            # Pool messages and the probe fit one envelope; a larger script needs Send.
            raise ScriptFailedError("the script is too large for one WS-Management envelope")
        return payload.data

    # --- the pipeline ---------------------------------------------------------------------

    async def _outcome(self, shell: psrpcore.ClientPowerShell, command_id: str) -> str:
        output = _Output(self._limits.max_output_bytes)
        end = time.monotonic() + self._limits.operation_s
        while shell.state not in _ENDED:
            left = end - time.monotonic()
            if left <= 0:
                raise OperationTimeoutError
            await self._receive(command_id, min(POLL_S, left), output)
        if output.error is not None:
            raise ScriptFailedError(f"probe failed: {output.error}")
        if shell.state != PSInvocationState.Completed:
            raise ScriptFailedError(f"probe failed: the pipeline {shell.state.name.lower()}")
        return "\n".join(output.items)

    async def _receive(
        self, command_id: str | None, timeout_s: float, output: _Output | None
    ) -> None:
        assert self.shell_id is not None
        try:
            body = await self._post(
                self._request.receive(self.shell_id, command_id, timeout_s), expect="Receive"
            )
        except WSManFaultError as exc:
            if exc.code == envelopes.OPERATION_TIMEOUT_FAULT:
                return  # nothing yet: poll again
            raise
        reply = envelopes.received(body, command_id)
        pipeline_id = uuid.UUID(command_id) if command_id else None
        for data in reply.data:
            self._pool.receive_data(
                psrpcore.PSRPPayload(data, psrpcore.StreamType.default, pipeline_id)
            )
        while (event := self._pool.next_event()) is not None:
            _act_on(event, output)

    async def _post(self, envelope: bytes, *, expect: str) -> Any:
        status, reply = await self._connection.post(envelope)
        body = envelopes.reply_body(status, reply)
        log.debug("%s: %s answered", self._connection.endpoint.hostname, expect)
        return body


class _Output:
    """What the pipeline has said: its output items (bounded) and its first error."""

    def __init__(self, limit: int) -> None:
        self.items: list[str] = []
        self.error: str | None = None
        self._size = 0
        self._limit = limit

    def add(self, item: object) -> None:
        text = str(item)
        self._size += len(text.encode("utf-8", "surrogatepass"))
        if self._size > self._limit:
            raise ScriptFailedError(f"output exceeds the {self._limit} byte limit")
        self.items.append(text)

    def fail(self, message: str) -> None:
        if self.error is None:
            self.error = message or "PowerShell reported an error without a message"


def _act_on(event: psrpcore.PSRPEvent[Any, Any], output: _Output | None) -> None:
    if (
        isinstance(event, psrpcore.RunspacePoolStateEvent)
        and event.state == RunspacePoolState.Broken
    ):
        raise PoolBrokenError(_text(event.reason) or "the host broke the runspace pool")
    if output is None:
        return
    if isinstance(event, psrpcore.PipelineOutputEvent):
        output.add(event.data)
    elif isinstance(event, psrpcore.ErrorRecordEvent):
        output.fail(_text(event.record))
    elif isinstance(event, psrpcore.PipelineStateEvent) and event.state == PSInvocationState.Failed:
        output.fail(_text(event.reason) or "the pipeline failed")


def _text(record: object) -> str:
    if record is None:
        return ""
    try:
        return str(record)
    except Exception:  # a record the host filled in oddly
        return ""


def parameters_for(patterns: Sequence[str]) -> dict[str, Any]:
    """The probe's one parameter: the policy's product name patterns."""
    return {"Patterns": list(patterns)}
