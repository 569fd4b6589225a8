"""POST /rescans and GET /rescans/{id}: queue a rescan, then follow it host by host."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status

from exporters import auth
from exporters.api.deps import Api
from exporters.api.schemas import Error, Invalid, RescanBody, RescanHost, RescanOut
from store.hosts import HostLookupError
from store.model import RescanRequest
from store.rescans import RescanError, RescanResult, Selector, request_rescan, rescan_results

log = logging.getLogger("cmscan.api")


def _rescan_out(request: RescanRequest, results: list[RescanResult]) -> RescanOut:
    assert request.id is not None
    return RescanOut(
        id=request.id,
        state=request.state,
        selector=request.selector,
        requested_at=request.requested_at,
        requested_by=request.requested_by,
        host_count=request.host_count,
        done_count=request.done_count,
        finished_at=request.finished_at,
        results=[
            RescanHost(
                hostname=r.hostname,
                outcome=r.outcome,
                reason=r.reason,
                status=r.status,
                failing_rules=list(r.failing_rules),
            )
            for r in results
        ],
    )


def routes(api: Api, *, prefix: str) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/rescans",
        status_code=status.HTTP_202_ACCEPTED,
        responses={
            400: {"model": Error, "description": "The body cannot be decoded as text."},
            422: {"model": Invalid, "description": "Not JSON, invalid, or selects no host."},
        },
    )
    async def rescan(
        body: RescanBody,
        response: Response,
        caller: auth.Caller = api.rescanner,
    ) -> RescanOut:
        """Queue a rescan of the selected hosts; a running daemon starts it within seconds."""
        selector = Selector(
            hosts=tuple(body.hosts), practice=body.practice, ccg=body.ccg, status=body.status
        )
        try:
            async with api.database.write() as session:
                request = await request_rescan(
                    session, selector=selector, requested_by=f"api:{caller.name}", now=api.clock()
                )
        except (RescanError, HostLookupError) as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
        log.info(
            "rescan #%s of %d host(s) requested by api:%s (%s)",
            request.id,
            request.host_count,
            caller.name,
            selector.describe(),
        )
        response.headers["Location"] = f"{prefix}/rescans/{request.id}"
        return _rescan_out(request, [])

    @router.get(
        "/rescans/{request_id}", dependencies=[api.reader], responses={404: {"model": Error}}
    )
    async def rescan_state(
        request_id: Annotated[int, Path(ge=1, le=2**31 - 1)],  # an INTEGER column
    ) -> RescanOut:
        """A rescan request: its state, counts, and each host's result so far."""
        async with api.database.read() as session:
            request, results = await rescan_results(session, request_id=request_id)
        if request is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no rescan {request_id}")
        return _rescan_out(request, list(results))

    return router
