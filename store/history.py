"""Status transitions: every change of a host's status is kept, to draw progress over time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from store.model import HostState, StatusChange


def set_status(
    session: AsyncSession, state: HostState, status: str, *, at: datetime, reason: str | None
) -> bool:
    """Move a host to `status`, recording the transition; return whether it changed."""
    if state.status == status:
        return False
    session.add(
        StatusChange(
            host_id=state.host_id,
            at=at,
            from_status=state.status,
            to_status=status,
            reason=(reason or "")[:200] or None,
        )
    )
    state.status = status
    state.status_since = at
    return True
