"""GET /hosts and /hosts/{hostname}: the host list a page at a time, and one host in full."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status

from exporters.api.deps import Api
from exporters.api.schemas import (
    MAX_PAGE,
    MAX_PER_PAGE,
    PRINTABLE,
    ChangeOut,
    Code,
    Error,
    Finding,
    HostList,
    HostOut,
    ScanOut,
    StatusName,
    VerdictOut,
)
from policy import Policy
from store.hosts import HostLookupError
from store.model import HostState, Status
from store.policies import get_active_policy
from store.reports.groups import is_stale
from store.reports.host_pages import HostDetail, HostFilter, host_detail, host_page


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


def _verdict(state: HostState | None, policy: Policy) -> VerdictOut | None:
    if state is None or not isinstance(state.verdict, dict):
        return None
    stored = state.verdict
    return VerdictOut(
        status=str(stored.get("status", "")),
        policy_id=state.policy_id,
        policy_hash=state.policy_hash,
        failing=_findings(stored.get("failing"), policy),
        advisories=_findings(stored.get("advisories"), policy),
        waived=_findings(stored.get("waived"), policy),
    )


def _host_out(detail: HostDetail, verdict: VerdictOut | None, api: Api) -> HostOut:
    h, state = detail.host, detail.state
    cutoff = api.clock() - api.settings.freshness
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
        stale=is_stale(state.last_scan_at, state.last_success_at, cutoff) if state else False,
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
            ChangeOut(at=c.at, from_status=c.from_status, to_status=c.to_status, reason=c.reason)
            for c in detail.changes
        ],
    )


def routes(api: Api) -> APIRouter:
    router = APIRouter()

    @router.get("/hosts", dependencies=[api.reader])
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
        selection = HostFilter(status=status_, ccg=ccg, practice=practice, text=q or None)
        async with api.database.read() as session:
            found = await host_page(
                session,
                selection=selection,
                offset=(page - 1) * per_page,
                limit=per_page,
                cutoff=api.clock() - api.settings.freshness,
            )
        more = page * per_page < found.total and page < MAX_PAGE
        return HostList(
            total=found.total,
            page=page,
            per_page=per_page,
            items=found.items,
            next=str(request.url.include_query_params(page=page + 1)) if more else None,
        )

    @router.get(
        "/hosts/{hostname}",
        dependencies=[api.reader],
        responses={404: {"model": Error}, 409: {"model": Error}},
    )
    async def host(
        hostname: Annotated[str, Path(min_length=1, max_length=253, pattern=PRINTABLE)],
    ) -> HostOut:
        """One host: inventory, latest facts, verdict with reasons, recent scans and history."""
        async with api.database.read() as session:
            try:
                detail = await host_detail(session, name=hostname)
            except HostLookupError as exc:
                raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
            if detail is None:
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, detail=f"no host {hostname!r} in the inventory"
                )
            policy = await get_active_policy(session)
        return _host_out(detail, _verdict(detail.state, policy), api)

    return router
