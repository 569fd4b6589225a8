"""GET /summary: hosts per group by status, the share compliant and how many are stale."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from exporters.api.deps import Api
from exporters.api.schemas import GroupSummary, Summary
from store.organisations import organisation_names
from store.reports.figures import GroupCounts, status_figures
from store.reports.groups import GroupLevel, for_aggregates


def _group_summary(code: str, name: str | None, counts: GroupCounts) -> GroupSummary:
    return GroupSummary(
        code=code,
        name=name,
        hosts=counts.hosts,
        statuses=dict(counts.statuses),
        compliant_percent=counts.compliant_percent,
        stale=counts.stale,
    )


def routes(api: Api) -> APIRouter:
    router = APIRouter()

    @router.get("/summary", dependencies=[api.reader])
    async def summary(
        group: Annotated[GroupLevel, Query(description="The level to group by.")] = "ccg",
    ) -> Summary:
        """Hosts per group: counts per status, the share compliant, and how many are stale."""
        now = api.clock()
        async with api.database.read() as session:
            await for_aggregates(session)
            figures = await status_figures(
                session, levels=(group,), now=now, cutoff=now - api.settings.freshness
            )
            names = await organisation_names(session, kind=group)
        groups = [
            _group_summary(code, names.get(code), counts)
            for (code,), counts in sorted(figures.groups.items())
        ]
        return Summary(
            group=group,
            generated_at=now,
            freshness_seconds=api.settings.freshness.total_seconds(),
            total=_group_summary("all", None, figures.total()),
            groups=groups,
        )

    return router
