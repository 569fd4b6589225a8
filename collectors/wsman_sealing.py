"""WinRM message encryption over HTTP (MS-WSMV 2.2.9.1): envelopes sealed with the session key."""

from __future__ import annotations

import re
import struct

import spnego
import spnego.exceptions

SOAP_TYPE = "application/soap+xml;charset=UTF-8"
_BOUNDARY = "Encrypted Boundary"
_LENGTH = struct.Struct("<I")
# Kerberos and NTLM/SPNEGO name their sealed parts differently; CredSSP is not used here.
_PROTOCOLS = {"kerberos": "application/HTTP-Kerberos-session-encrypted"}
_SPNEGO = "application/HTTP-SPNEGO-session-encrypted"
_BOUNDARY_PARAM = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_ORIGINAL_LENGTH = re.compile(rb"Length=(\d+)", re.IGNORECASE)


class SealingError(Exception):
    """A sealed reply that cannot be opened: the message says what was wrong with it."""


def is_sealed(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind in ("multipart/encrypted", "multipart/x-multi-encrypted")


def sealed_protocol(auth: str) -> str:
    return _PROTOCOLS.get(auth, _SPNEGO)


def seal(context: spnego.ContextProxy, envelope: bytes, protocol: str) -> tuple[str, bytes]:
    """The Content-Type and body that carry `envelope` encrypted with the session key."""
    wrapped = context.wrap_winrm(envelope)
    body = b"".join(
        (
            f"--{_BOUNDARY}\r\n\tContent-Type: {protocol}\r\n"
            f"\tOriginalContent: type={SOAP_TYPE};Length={len(envelope)}\r\n"
            f"--{_BOUNDARY}\r\n\tContent-Type: application/octet-stream\r\n".encode("ascii"),
            _LENGTH.pack(len(wrapped.header)),
            wrapped.header,
            wrapped.data,
            f"--{_BOUNDARY}--\r\n".encode("ascii"),
        )
    )
    return f'multipart/encrypted;protocol="{protocol}";boundary="{_BOUNDARY}"', body


def unseal(context: spnego.ContextProxy, body: bytes, content_type: str) -> bytes:
    """The envelope inside a sealed reply; every malformation is a SealingError, since the
    host (or whoever sits on the path) chooses these bytes."""
    match = _BOUNDARY_PARAM.search(content_type)
    if match is None:
        raise SealingError("an encrypted reply without a boundary")
    marker = f"--{match.group(1)}".encode("latin-1")
    parts = body.split(marker)
    # ['', description, payload, '--\r\n'] for each sealed chunk; Windows sends one.
    envelope = bytearray()
    for description, payload in zip(parts[1::2], parts[2::2], strict=False):
        if description.startswith(b"--"):
            break
        length = _ORIGINAL_LENGTH.search(description)
        if length is None:
            raise SealingError("an encrypted reply without its original length")
        envelope += _open_chunk(context, payload, int(length.group(1)))
    if not envelope:
        raise SealingError("an encrypted reply with nothing in it")
    return bytes(envelope)


def _open_chunk(context: spnego.ContextProxy, payload: bytes, expected: int) -> bytes:
    start = payload.find(b"application/octet-stream\r\n")
    if start < 0:
        raise SealingError("an encrypted part without its octet-stream")
    data = payload[start + len(b"application/octet-stream\r\n") :]
    if len(data) < _LENGTH.size:
        raise SealingError("an encrypted part too short for its header")
    (header_length,) = _LENGTH.unpack_from(data)
    if header_length > len(data) - _LENGTH.size:
        raise SealingError("an encrypted part whose header is longer than the part")
    header = data[_LENGTH.size : _LENGTH.size + header_length]
    sealed = data[_LENGTH.size + header_length :]
    try:
        opened = context.unwrap_winrm(bytes(header), bytes(sealed))
    except spnego.exceptions.SpnegoError as exc:
        raise SealingError("the reply's signature does not verify") from exc
    except Exception as exc:  # spnego's own parsers meet bytes chosen by the host
        raise SealingError(f"cannot decrypt the reply: {type(exc).__name__}") from exc
    if len(opened) != expected:
        raise SealingError(f"the reply decrypts to {len(opened)} bytes, not {expected}")
    return opened
