"""The API's wire formats: what requests may hold and what each route answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from store.reports.host_pages import HostSummary

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


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "No token, or not a configured one."},
    403: {"model": Error, "description": "The token lacks the scope this route needs."},
    503: {"model": Error, "description": "No tokens are configured, or the database is down."},
}


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


class HostList(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[HostSummary]
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
