"""The HTTP API (/api/v1): fleet summary, hosts, one host, rescans and the unpatched export.

Every route needs a bearer token (exporters/auth.py): `read` for GET, `rescan` to queue a
rescan. Errors are JSON objects with a `detail`; invalid input answers 422 and says where.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from config.settings import Settings
from exporters import auth
from exporters.csv import ExportError, ExportOptions, export_unpatched
from policy import Policy
from store import db, reports
from store.hosts import HostLookupError
from store.model import RescanRequest, Status
from store.policies import get_active_policy
from store.rescans import (
    RescanError,
    RescanResult,
    Selector,
    request_rescan,
    rescan_results,
)

log = logging.getLogger("cmscan.api")

PREFIX = "/api/v1"
MAX_PAGE = 100_000
MAX_PER_PAGE = 500
MAX_RESCAN_HOSTS = 10_000

StatusName = Literal["compliant", "noncompliant", "unreachable", "auth_failed", "error", "unknown"]
# No control characters anywhere: PostgreSQL refuses NUL in text, and nothing real has them.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Code = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=16, pattern=PRINTABLE),
]
HostName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=253, pattern=PRINTABLE),
]


class Error(BaseModel):
    detail: str


class Problem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Invalid(BaseModel):
    """422: a list of problems with where they are, or one sentence about the request."""

    detail: str | list[Problem]


_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "No token, or not a configured one."},
    403: {"model": Error, "description": "The token lacks the scope this route needs."},
    503: {"model": Error, "description": "No tokens are configured, or the database is down."},
}


# --- Response models ---------------------------------------------------------------------


class GroupSummary(BaseModel):
    code: str
    name: str | None
    hosts: int
    statuses: dict[str, int]
    compliant_percent: float
    stale: int


class Summary(BaseModel):
    group: str
    generated_at: datetime
    freshness_seconds: float
    total: GroupSummary
    groups: list[GroupSummary]


class HostItem(BaseModel):
    hostname: str
    address: str | None
    site: str | None
    practice: str | None
    pcn: str | None
    ccg: str | None
    icb: str | None
    status: str
    failing_rules: list[str]
    last_scan_at: datetime | None
    last_success_at: datetime | None
    stale: bool


class HostList(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[HostItem]
    next: str | None = Field(description="The next page's URL, or null on the last page.")


class Finding(BaseModel):
    rule: str
    title: str
    severity: str
    reason: str
    remediation: str | None


class VerdictOut(BaseModel):
    status: str
    policy_id: str | None
    policy_hash: str | None
    failing: list[Finding]
    advisories: list[Finding]
    waived: list[Finding]


class ScanOut(BaseModel):
    started_at: datetime
    finished_at: datetime
    outcome: str
    reason: str
    duration_s: float
    transport: str
    trigger: str


class ChangeOut(BaseModel):
    at: datetime
    from_status: str
    to_status: str
    reason: str | None


class HostOut(BaseModel):
    hostname: str
    address: str | None
    port: int
    transport: str
    site: str | None
    practice: str | None
    practice_name: str | None
    pcn: str | None
    ccg: str | None
    icb: str | None
    credential_profile: str
    retired_at: datetime | None
    status: str
    status_since: datetime | None
    stale: bool
    last_scan_at: datetime | None
    last_outcome: str | None
    last_reason: str | None
    last_success_at: datetime | None
    next_due_at: datetime | None
    verdict: VerdictOut | None
    facts: dict[str, Any] | None
    facts_at: datetime | None
    scans: list[ScanOut]
    history: list[ChangeOut]


class RescanBody(BaseModel):
    """Which hosts to rescan; the fields combine (a host must match all that are given)."""

    model_config = ConfigDict(extra="forbid")

    hosts: list[HostName] = Field(default_factory=list, max_length=MAX_RESCAN_HOSTS)
    practice: Code | None = None
    ccg: Code | None = None
    status: StatusName | None = None


class RescanHost(BaseModel):
    hostname: str
    outcome: str
    reason: str
    status: str
    failing_rules: list[str]


class RescanOut(BaseModel):
    id: int
    state: str
    selector: dict[str, Any]
    requested_at: datetime
    requested_by: str
    host_count: int
    done_count: int
    finished_at: datetime | None
    results: list[RescanHost]


# --- Routes ------------------------------------------------------------------------------


def _findings(items: object, policy: Policy) -> list[Finding]:
    found = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        rule = policy.rule(str(item.get("rule", "")))
        found.append(
            Finding(
                rule=str(item.get("rule", "")),
                title=str(item.get("title", "")),
                severity=str(item.get("severity", "")),
                reason=str(item.get("reason", "")),
                remediation=rule.remediation if rule is not None else None,
            )
        )
    return found


def _group_summary(code: str, name: str | None, counts: reports.GroupCounts) -> GroupSummary:
    return GroupSummary(
        code=code,
        name=name,
        hosts=counts.hosts,
        statuses=dict(counts.statuses),
        compliant_percent=counts.compliant_percent,
        stale=counts.stale,
    )


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


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


def build_router(
    database: db.Database, settings: Settings, *, clock: Callable[[], datetime]
) -> APIRouter:
    tokens = settings.api.tokens
    reader = Depends(auth.requires("read", tokens))
    rescanner = Depends(auth.requires("rescan", tokens))
    router = APIRouter(prefix=PREFIX, responses=_AUTH_ERRORS)

    @router.get("/summary", dependencies=[reader])
    async def summary(
        group: Annotated[reports.GroupLevel, Query(description="The level to group by.")] = "ccg",
    ) -> Summary:
        """Hosts per group: counts per status, the share compliant, and how many are stale."""
        now = clock()
        async with database.read() as session:
            await reports.for_aggregates(session)
            figures = await reports.status_figures(
                session, levels=(group,), now=now, cutoff=now - settings.freshness
            )
            names = await reports.organisation_names(session, level=group)
        total = reports.GroupCounts()
        groups = []
        for (code,), counts in sorted(figures.groups.items()):
            groups.append(_group_summary(code, names.get(code), counts))
            for name, hosts in counts.statuses.items():
                total.statuses[name] = total.statuses.get(name, 0) + hosts
            total.stale += counts.stale
        return Summary(
            group=group,
            generated_at=now,
            freshness_seconds=settings.freshness.total_seconds(),
            total=_group_summary("all", None, total),
            groups=groups,
        )

    @router.get("/hosts", dependencies=[reader])
    async def hosts(
        request: Request,
        status_: Annotated[StatusName | None, Query(alias="status")] = None,
        ccg: Annotated[Code | None, Query()] = None,
        practice: Annotated[Code | None, Query()] = None,
        q: Annotated[
            str | None,
            Query(
                max_length=200,
                pattern=PRINTABLE,
                description="Part of a hostname, address or site, any case.",
            ),
        ] = None,
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 50,
    ) -> HostList:
        """Hosts in service, ordered by hostname, one page at a time."""
        now = clock()
        selection = reports.HostFilter(status=status_, ccg=ccg, practice=practice, text=q or None)
        async with database.read() as session:
            found = await reports.host_page(
                session,
                selection=selection,
                offset=(page - 1) * per_page,
                limit=per_page,
                cutoff=now - settings.freshness,
            )
        more = page * per_page < found.total and page < MAX_PAGE
        return HostList(
            total=found.total,
            page=page,
            per_page=per_page,
            items=[
                HostItem(
                    hostname=h.hostname,
                    address=h.address,
                    site=h.site,
                    practice=h.practice,
                    pcn=h.pcn,
                    ccg=h.ccg,
                    icb=h.icb,
                    status=h.status,
                    failing_rules=list(h.failing_rules),
                    last_scan_at=h.last_scan_at,
                    last_success_at=h.last_success_at,
                    stale=h.stale,
                )
                for h in found.items
            ],
            next=str(request.url.include_query_params(page=page + 1)) if more else None,
        )

    @router.get(
        "/hosts/{hostname}",
        dependencies=[reader],
        responses={404: {"model": Error}, 409: {"model": Error}},
    )
    async def host(
        hostname: Annotated[str, Path(min_length=1, max_length=253, pattern=PRINTABLE)],
    ) -> HostOut:
        """One host: inventory, latest facts, verdict with reasons, recent scans and history."""
        now = clock()
        async with database.read() as session:
            try:
                detail = await reports.host_detail(session, name=hostname)
            except HostLookupError as exc:
                raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
            if detail is None:
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, detail=f"no host {hostname!r} in the inventory"
                )
            policy = await get_active_policy(session)
        h, state = detail.host, detail.state
        verdict = None
        if state is not None and isinstance(state.verdict, dict):
            stored = state.verdict
            verdict = VerdictOut(
                status=str(stored.get("status", "")),
                policy_id=state.policy_id,
                policy_hash=state.policy_hash,
                failing=_findings(stored.get("failing"), policy),
                advisories=_findings(stored.get("advisories"), policy),
                waived=_findings(stored.get("waived"), policy),
            )
        cutoff = now - settings.freshness
        return HostOut(
            hostname=h.hostname,
            address=h.address,
            port=h.port,
            transport=h.transport,
            site=h.site,
            practice=h.practice_code,
            practice_name=detail.practice_name,
            pcn=h.pcn_code,
            ccg=h.ccg_code,
            icb=h.icb_code,
            credential_profile=h.credential_profile,
            retired_at=h.retired_at,
            status=state.status if state else Status.UNKNOWN,
            status_since=state.status_since if state else None,
            stale=reports.is_stale(state.last_scan_at, state.last_success_at, cutoff)
            if state
            else False,
            last_scan_at=state.last_scan_at if state else None,
            last_outcome=state.last_outcome if state else None,
            last_reason=state.last_reason if state else None,
            last_success_at=state.last_success_at if state else None,
            next_due_at=state.next_due_at if state else None,
            verdict=verdict,
            facts=state.facts if state and isinstance(state.facts, dict) else None,
            facts_at=state.facts_at if state else None,
            scans=[
                ScanOut(
                    started_at=s.started_at,
                    finished_at=s.finished_at,
                    outcome=s.outcome,
                    reason=s.reason,
                    duration_s=s.duration_s,
                    transport=s.transport,
                    trigger=s.trigger,
                )
                for s in detail.scans
            ],
            history=[
                ChangeOut(
                    at=c.at, from_status=c.from_status, to_status=c.to_status, reason=c.reason
                )
                for c in detail.changes
            ],
        )

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
        caller: auth.Caller = rescanner,
    ) -> RescanOut:
        """Queue a rescan of the selected hosts; a running daemon starts it within seconds."""
        selector = Selector(
            hosts=tuple(body.hosts), practice=body.practice, ccg=body.ccg, status=body.status
        )
        try:
            async with database.write() as session:
                request = await request_rescan(
                    session, selector=selector, requested_by=f"api:{caller.name}", now=clock()
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
        response.headers["Location"] = f"{PREFIX}/rescans/{request.id}"
        return _rescan_out(request, [])

    @router.get("/rescans/{request_id}", dependencies=[reader], responses={404: {"model": Error}})
    async def rescan_state(
        request_id: Annotated[int, Path(ge=1, le=2**31 - 1)],  # an INTEGER column
    ) -> RescanOut:
        """A rescan request: its state, counts, and each host's result so far."""
        async with database.read() as session:
            request, results = await rescan_results(session, request_id=request_id)
        if request is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no rescan {request_id}")
        return _rescan_out(request, list(results))

    @router.get(
        "/export/unpatched.csv",
        dependencies=[reader],
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
        filename = f"unpatched.{format}"
        chunks = export_unpatched(database, options, now=clock())
        # The first chunk opens the read transaction: a database that is down answers 503
        # here, before a 200 has been sent and a truncated file would follow it.
        first = await anext(chunks)
        return StreamingResponse(
            _prepend(first, chunks),
            media_type=options.media_type,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    return router
