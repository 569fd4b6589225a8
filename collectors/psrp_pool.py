"""A psrpcore runspace pool that serialises each repeated message once per process, not per probe.

Every probe sends the same three messages (the pool's SessionCapability and InitRunspacePool,
then the probe's CreatePipeline with its ~35 KB script); only the pool and pipeline ids in the
message header differ. Serialising them to CLIXML was a third of a probe's CPU, so their
bytes are kept, keyed by what makes them differ, and framed afresh for each pool. The host's
ApplicationPrivateData, which the probe never reads, is not deserialised at all.
"""

from __future__ import annotations

import typing
import uuid
from collections import OrderedDict
from xml.etree import ElementTree

import psrpcore
from psrpcore._payload import PSRPMessage, create_message  # psrpcore's own framing
from psrpcore.types import (
    ApplicationPrivateData,
    InitRunspacePool,
    PSObject,
    PSRPMessageType,
    SessionCapability,
    serialize,
)

# One entry per distinct probe script and pattern list: a handful in practice.
_MOST_KEPT = 32
_SERIALISED: OrderedDict[tuple[object, ...], bytes] = OrderedDict()


class ReusingPool(psrpcore.ClientRunspacePool):
    """A client pool whose opening messages, and a pipeline with a given `pipeline_key`,
    are serialised once. Everything else goes through psrpcore unchanged."""

    pipeline_key: tuple[object, ...] | None = None

    def prepare_message(
        self,
        message: PSObject | None,
        message_type: PSRPMessageType | None = None,
        pipeline_id: uuid.UUID | None = None,
        stream_type: psrpcore.StreamType = psrpcore.StreamType.default,
    ) -> None:
        key = self._key(message, message_type)
        if key is None or message is None:
            super().prepare_message(message, message_type, pipeline_id, stream_type)
            return
        kind = message_type or PSRPMessageType.get_message_id(type(message))
        data = _SERIALISED.get(key)
        if data is None:
            element = serialize(
                message,
                self._cipher,
                our_capability=self.our_capability,
                their_capability=self.their_capability,
            )
            data = ElementTree.tostring(element, encoding="utf-8", method="xml")
            _SERIALISED[key] = data
            while len(_SERIALISED) > _MOST_KEPT:
                _SERIALISED.popitem(last=False)
        framed = create_message(self._is_client, kind, data, self.runspace_pool_id, pipeline_id)
        object_id = self._fragment_counter
        self._send_buffer.append(
            PSRPMessage(
                kind, bytearray(framed), self.runspace_pool_id, pipeline_id, object_id, stream_type
            )
        )

    def _process_message(self, message: PSRPMessage) -> psrpcore.PSRPEvent[typing.Any, typing.Any]:
        if message.message_type != PSRPMessageType.ApplicationPrivateData:
            return super()._process_message(message)
        # The host's PSVersionTable and the like, which nothing here reads: deserialising it
        # cost 0.7 ms a probe, the most of any message. psrpcore only needs the event, to
        # open a pool that was connecting (which a probe's never is).
        event = psrpcore.PSRPEvent.create(
            message.message_type,
            ApplicationPrivateData(ApplicationPrivateData={}),
            self.runspace_pool_id,
            message.pipeline_id,
        )
        self._process_ApplicationPrivateData(event)  # type: ignore[arg-type]
        return event

    def _key(
        self, message: PSObject | None, message_type: PSRPMessageType | None
    ) -> tuple[object, ...] | None:
        # What the bytes depend on besides the message: both sides' protocol versions.
        versions = (_version(self.our_capability), _version(self.their_capability))
        if message_type == PSRPMessageType.CreatePipeline and self.pipeline_key is not None:
            # (ClientPowerShell sends its metadata object, typed by message_type.)
            return ("pipeline", versions, *self.pipeline_key)
        if message_type is not None:
            return None
        if isinstance(message, SessionCapability | InitRunspacePool) and self.host is None:
            return (type(message).__name__, versions, self._min_runspaces, self._max_runspaces)
        return None


def _version(capability: typing.Any) -> str:
    return str(getattr(capability, "protocolversion", "")) if capability is not None else ""
