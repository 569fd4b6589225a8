"""GET /export/unpatched.csv: the machines still to fix, streamed as the CLI export writes them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import StreamingResponse

from exporters.api.deps import Api
from exporters.api.schemas import Code, Invalid
from exporters.csv import ExportError, ExportOptions, export_unpatched


async def prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The first chunk (already read, so errors surfaced before the response) and the rest."""
    yield first
    async for chunk in rest:
        yield chunk


def routes(api: Api) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/export/unpatched.csv",
        dependencies=[api.reader],
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"text/csv": {}, "application/json": {}},
                "description": "The export, streamed.",
            },
            422: {"model": Invalid, "description": "Invalid parameters."},
        },
    )
    async def export(
        ccg: Annotated[Code | None, Query()] = None,
        practice: Annotated[Code | None, Query()] = None,
        include_unreachable: Annotated[bool, Query()] = False,
        stale_days: Annotated[int | None, Query(ge=0, le=36_500)] = None,
        excel: Annotated[bool, Query(description="Start with a UTF-8 byte order mark.")] = False,
        format: Annotated[Literal["csv", "json"], Query()] = "csv",
    ) -> StreamingResponse:
        """Machines still to fix, as `cmscan export unpatched` writes them."""
        try:
            options = ExportOptions(
                ccg=ccg,
                practice=practice,
                include_unreachable=include_unreachable,
                stale_days=stale_days,
                excel=excel,
                format=format,
            )
        except ExportError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
        chunks = export_unpatched(api.database, options, now=api.clock())
        # The first chunk opens the read transaction: a database that is down answers 503
        # here, before a 200 has been sent and a truncated file would follow it.
        first = await anext(chunks)
        return StreamingResponse(
            prepend(first, chunks),
            media_type=options.media_type,
            headers={"Content-Disposition": f'attachment; filename="unpatched.{format}"'},
        )

    return router
