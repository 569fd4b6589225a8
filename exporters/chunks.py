"""Rows as chunks of CSV (RFC 4180, CRLF) or JSON bytes, for every streamed export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

CHUNK_BYTES = 64 * 1024  # bytes gathered before a chunk is handed to the file or the socket
BOM = "\ufeff".encode()

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8; header=present", "json": "application/json"}


@dataclass(slots=True)
class ExportStats:
    """Filled in while an export streams, for the summary line the CLI prints."""

    rows: int = 0
    bytes: int = 0


async def encoded(
    rows: AsyncIterator[dict[str, Any]],
    *,
    format: Literal["csv", "json"],
    header: Sequence[str],
    cells: Callable[[dict[str, Any]], list[str]],
    excel: bool,
    stats: ExportStats,
) -> AsyncIterator[bytes]:
    """Rows as CSV or JSON chunks, counting both into `stats` as they leave."""

    async def counted() -> AsyncIterator[dict[str, Any]]:
        async for row in rows:
            stats.rows += 1
            yield row

    chunks = (
        json_chunks(counted())
        if format == "json"
        else csv_chunks(counted(), header=header, cells=cells, excel=excel)
    )
    async for chunk in chunks:
        stats.bytes += len(chunk)
        yield chunk


async def csv_chunks(
    rows: AsyncIterator[dict[str, Any]],
    *,
    header: Sequence[str],
    cells: Callable[[dict[str, Any]], list[str]],
    excel: bool,
) -> AsyncIterator[bytes]:
    """A header row, then `cells(row)` for each row; `excel` starts with a byte order mark
    so that Excel reads the accents in names."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    if excel:
        yield BOM
    async for row in rows:
        writer.writerow(cells(row))
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


async def json_chunks(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """One JSON array of objects, written as the rows are read."""
    parts = ["["]
    size = 1
    first = True
    async for row in rows:
        text = ("\n" if first else ",\n") + json.dumps(row, ensure_ascii=False)
        first = False
        parts.append(text)
        size += len(text)
        if size >= CHUNK_BYTES:
            yield "".join(parts).encode("utf-8")
            parts, size = [], 0
    parts.append("\n]\n")
    yield "".join(parts).encode("utf-8")
