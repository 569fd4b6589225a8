"""PSRP on the wire: the client's fragments reassembled into messages, and replies cut up."""

from __future__ import annotations

import struct
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from pypsrp.powershell import Fragment

from simulator import shells

HEADER = struct.Struct(">QQBI")
# Windows' PowerShell plugin sends fragments of at most 32 KiB.
MAX_FRAGMENT = 32 * 1024
# What one shell may hold of a client's unfinished messages.
MAX_BUFFERED_INPUT = 16 * 1024 * 1024


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
            if len(data) - offset < HEADER.size:
                raise PSRPError("truncated PSRP fragment header")
            object_id, fragment_id, flags, length = HEADER.unpack_from(data, offset)
            offset += HEADER.size
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

    def append(self, object_id: int, packed: bytes, fragment_size: int) -> None:
        """Queue one message as fragments of `object_id` no larger than `fragment_size`."""
        chunks = [packed[i : i + fragment_size] for i in range(0, len(packed), fragment_size)]
        for index, chunk in enumerate(chunks or [b""]):
            fragment = Fragment(object_id, index, chunk, index == 0, index == len(chunks) - 1)
            self.fragments.append(fragment.pack())
