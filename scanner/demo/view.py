"""The demo's live view: what is scanned, compliance per CCG, and what to try next."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from store.model import Host, HostState, Status
from store.reports.access import group_access

STATUS_COLUMNS = ("compliant", "noncompliant", "unreachable", "auth_failed", "error", "unknown")
STYLES = {
    "compliant": "green",
    "noncompliant": "yellow",
    "unreachable": "magenta",
    "auth_failed": "red",
    "error": "red",
    "unknown": "dim",
}


@dataclass
class Snapshot:
    """The fleet as the database sees it right now."""

    total: int = 0
    scanned: int = 0
    by_ccg: dict[str, Counter[str]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    # Per CCG: practices where someone can open the PCN dashboard on a compliant machine,
    # and practices in all.
    dashboard: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def compliant_share(self) -> float | None:
        graded = sum(c["compliant"] + c["noncompliant"] for c in self.by_ccg.values())
        compliant = sum(c["compliant"] for c in self.by_ccg.values())
        return compliant / graded if graded else None


async def take_snapshot(session: AsyncSession) -> Snapshot:
    in_service = col(Host.retired_at).is_(None)
    joined = sa.select(col(Host.ccg_code), col(HostState.status), sa.func.count()).join(
        HostState, col(HostState.host_id) == col(Host.id)
    )
    snapshot = Snapshot()
    rows = await session.execute(
        joined.where(in_service).group_by(col(Host.ccg_code), col(HostState.status))
    )
    for ccg, status, count in rows.all():
        snapshot.by_ccg.setdefault(ccg or "-", Counter())[status] += count
        snapshot.total += count
        if status != Status.UNKNOWN:
            snapshot.scanned += count
    outcomes = await session.execute(
        sa.select(col(HostState.last_outcome), sa.func.count())
        .join(Host, col(Host.id) == col(HostState.host_id))
        .where(in_service, col(HostState.last_outcome).is_not(None))
        .group_by(col(HostState.last_outcome))
    )
    snapshot.outcomes.update({outcome or "": count for outcome, count in outcomes.all()})
    for (ccg,), figures in (await group_access(session, levels=("ccg",))).items():
        snapshot.dashboard[ccg] = (figures.practices_ready, sum(figures.practices.values()))
    return snapshot


def _dashboard_line(snapshot: Snapshot) -> str:
    ready = "  ".join(f"{ccg} {r}/{n}" for ccg, (r, n) in sorted(snapshot.dashboard.items()))
    return "PCN dashboard ready (practices): " + (ready or "-")


def _bar(share: float, width: int = 12) -> Text:
    filled = round(share * width)
    return Text("█" * filled, style="green") + Text("░" * (width - filled), style="dim")


def render(
    snapshot: Snapshot, *, header: str, sweep: str, events: list[str], hints: list[str]
) -> RenderableType:
    """One screen, readable in a 100x30 terminal."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("CCG")
    table.add_column("hosts", justify="right")
    for status in STATUS_COLUMNS:
        table.add_column(status.replace("_", " "), justify="right", style=STYLES[status])
    table.add_column("% compliant", min_width=18)
    for ccg, counts in sorted(snapshot.by_ccg.items()):
        graded = counts["compliant"] + counts["noncompliant"]
        share = counts["compliant"] / graded if graded else 0.0
        table.add_row(
            ccg,
            str(sum(counts.values())),
            *(str(counts[s]) for s in STATUS_COLUMNS),
            _bar(share) + Text(f" {share:4.0%}" if graded else "    -"),
        )
    overall = snapshot.compliant_share
    outcomes = "  ".join(f"{name} {count}" for name, count in snapshot.outcomes.most_common())
    parts: list[RenderableType] = [
        Text(header, style="bold"),
        Text(f"{sweep}   overall compliant: " + (f"{overall:.0%}" if overall is not None else "-")),
        Text(""),
        table,
        Text(_dashboard_line(snapshot), overflow="ellipsis", no_wrap=True),
        Text(""),
        Text("outcomes: " + (outcomes or "none yet"), style="dim"),
        Text(""),
        Text("Deployment campaign:", style="bold"),
        *(Text("  " + event) for event in (events or ["  (starts after the first sweep)"])),
        Text(""),
        Text("Try, in another terminal:", style="bold"),
        *(Text("  " + hint, style="cyan", overflow="ellipsis", no_wrap=True) for hint in hints),
    ]
    return Group(*parts)


def plain_line(snapshot: Snapshot, sweep: str) -> str:
    """The same, as one line for logs and pipes."""
    overall = snapshot.compliant_share
    per_ccg = ", ".join(
        f"{ccg} {c['compliant']}/{sum(c.values())}" for ccg, c in sorted(snapshot.by_ccg.items())
    )
    share = f"{overall:.0%}" if overall is not None else "-"
    return (
        f"{sweep}; compliant {share}; per CCG (compliant/hosts): {per_ccg};"
        f" {_dashboard_line(snapshot)}"
    )
