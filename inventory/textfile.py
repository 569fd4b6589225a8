"""Decoding text files as Windows tools write them: UTF-8 (BOM or not), UTF-16, Windows-1252."""

from __future__ import annotations

import codecs
from pathlib import Path

# Inventories are exported from spreadsheets and CMDBs; refuse anything absurdly large.
MAX_FILE_BYTES = 64 * 1024 * 1024


class InventoryFileError(ValueError):
    """A file cannot be read at all; the message names the file."""


def read_text(path: Path) -> str:
    """The file's text with newlines normalised by the caller's parser, decoding as Excel writes."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InventoryFileError(
                f"{path}: {size} bytes is larger than the {MAX_FILE_BYTES} limit"
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InventoryFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InventoryFileError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise InventoryFileError(f"{path}: {exc.strerror}") from None
    return decode(raw)


def decode(raw: bytes) -> str:
    if raw.startswith(codecs.BOM_UTF8):
        return raw[len(codecs.BOM_UTF8) :].decode("utf-8", "replace")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16", "replace")  # Excel's "Unicode text" export
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Not UTF-8: Excel on Windows writes the ANSI code page, Windows-1252 in the UK.
        return raw.decode("cp1252", "replace")
