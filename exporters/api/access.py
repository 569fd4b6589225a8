"""GET /access/practices and /export/access-gaps.csv: who can open each practice's dashboard."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from exporters.access_gaps import GapOptions, export_access_gaps
from exporters.api.deps import Api
from exporters.api.export import prepend
from exporters.api.schemas import Code, Invalid
from exporters.csv import ExportError
from store.reports.access import Readiness, practice_access


class PracticeAccessItem(BaseModel):
    """One practice: users who can open its dashboard, users missing a code, its machines."""

    practice_code: str
    practice_name: str | None
    pcn_code: str | None
    ccg_code: str | None
    users_with_access: int
    users_missing_codes: int
    machines_ready: int
    machines: int
    readiness: Readiness


class AccessView(BaseModel):
    practices: list[PracticeAccessItem]


def routes(api: Api) -> APIRouter:
    router = APIRouter()

    @router.get("/access/practices", dependencies=[api.reader])
    async def practices(
        ccg: Annotated[Code | None, Query()] = None,
        practice: Annotated[Code | None, Query()] = None,
    ) -> AccessView:
        """Per practice, as `cmscan access status --json` prints it; counts only, no names."""
        async with api.database.read() as session:
            found = await practice_access(session, ccg=ccg, practice=practice)
        return AccessView(practices=[PracticeAccessItem(**p.record()) for p in found])

    @router.get(
        "/export/access-gaps.csv",
        dependencies=[api.reader],
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"text/csv": {}, "application/json": {}},
                "description": "The gaps, streamed.",
            },
            422: {"model": Invalid, "description": "Invalid parameters."},
        },
    )
    async def gaps(
        ccg: Annotated[Code | None, Query()] = None,
        practice: Annotated[Code | None, Query()] = None,
        excel: Annotated[bool, Query(description="Start with a UTF-8 byte order mark.")] = False,
        format: Annotated[Literal["csv", "json"], Query()] = "csv",
    ) -> StreamingResponse:
        """Users at a practice with none of the codes that open its dashboard, as
        `cmscan export access-gaps` writes them (user IDs and names: for the RA only)."""
        try:
            options = GapOptions(ccg=ccg, practice=practice, excel=excel, format=format)
        except ExportError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
        chunks = export_access_gaps(api.database, options)
        first = await anext(chunks)  # a database that is down answers 503 before the 200
        return StreamingResponse(
            prepend(first, chunks),
            media_type=options.media_type,
            headers={"Content-Disposition": f'attachment; filename="access-gaps.{format}"'},
        )

    return router
