"""SQL tables: organisations, hosts, scans, host state, history, rescans, policies, access."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC time is required")
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text, so every value must be written in one form.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact); plain JSON text elsewhere. Python None is SQL
# NULL, not the JSON value null, so that "IS NULL" means "no document".
JSONType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def _when(*, nullable: bool = False, index: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=index)


class Status(enum.StrEnum):
    """A host's status as shown everywhere (docs/architecture.md: Host status)."""

    COMPLIANT = "compliant"
    NONCOMPLIANT = "noncompliant"
    UNREACHABLE = "unreachable"
    AUTH_FAILED = "auth_failed"
    ERROR = "error"
    UNKNOWN = "unknown"


class OrgKind(enum.StrEnum):
    PRACTICE = "practice"
    PCN = "pcn"
    CCG = "ccg"
    ICB = "icb"
    REGION = "region"


class Organisation(SQLModel, table=True):
    """An NHS organisation known by its ODS code: practice, PCN, CCG (sub-ICB location), ICB."""

    __tablename__ = "organisation"

    kind: str = Field(primary_key=True, max_length=16)
    code: str = Field(primary_key=True, max_length=16)
    name: str | None = Field(default=None, max_length=200)
    parent_code: str | None = Field(default=None, max_length=16)  # practice -> CCG, CCG -> ICB
    ods_status: str | None = Field(default=None, max_length=1)  # epraccur: A, C, D or P
    updated_at: datetime = _when()


class Host(SQLModel, table=True):
    """An inventoried workstation. Retired hosts keep their history but leave every report."""

    __tablename__ = "host"

    id: int | None = Field(default=None, primary_key=True)
    hostname: str = Field(unique=True, max_length=253)  # lower-case; Windows names ignore case
    address: str | None = Field(default=None, max_length=64)
    port: int
    transport: str = Field(max_length=16)
    practice_code: str | None = Field(default=None, max_length=16, index=True)
    pcn_code: str | None = Field(default=None, max_length=16)
    ccg_code: str | None = Field(default=None, max_length=16, index=True)
    icb_code: str | None = Field(default=None, max_length=16)
    site: str | None = Field(default=None, max_length=200)
    credential_profile: str = Field(default="default", max_length=64)
    tags: list[str] = Field(default_factory=list, sa_type=JSONType)
    enabled: bool = True
    retired_at: datetime | None = _when(nullable=True)
    first_seen_at: datetime = _when()
    last_seen_at: datetime = _when()  # last time an inventory import listed this host
    source: str | None = Field(default=None, max_length=200)


class Scan(SQLModel, table=True):
    """One probe of one host: its outcome, and the facts when it succeeded."""

    __tablename__ = "scan"
    __table_args__ = (sa.Index("ix_scan_host_started", "host_id", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host.id", ondelete="CASCADE")
    started_at: datetime = _when()
    finished_at: datetime = _when()
    outcome: str = Field(max_length=32)
    reason: str = Field(default="", max_length=500)
    duration_s: float
    transport: str = Field(max_length=16)
    trigger: str = Field(max_length=16)  # schedule, sweep, rescan, probe
    rescan_request_id: int | None = None
    scanner_id: str | None = Field(default=None, max_length=100)
    # The facts, when they differ from the host's previous ones (apart from the probe's own
    # timing); None when nothing changed or the probe failed.
    facts: dict[str, Any] | None = Field(default=None, sa_type=JSONType)


class HostState(SQLModel, table=True):
    """The latest state of a host: facts, verdict, status and when it is next due."""

    __tablename__ = "host_state"

    host_id: int = Field(primary_key=True, foreign_key="host.id", ondelete="CASCADE")
    status: str = Field(default=Status.UNKNOWN, max_length=16, index=True)
    status_since: datetime = _when()
    failing_rules: list[str] = Field(default_factory=list, sa_type=JSONType)
    advisories: list[str] = Field(default_factory=list, sa_type=JSONType)
    verdict: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    policy_id: str | None = Field(default=None, max_length=100)
    policy_hash: str | None = Field(default=None, max_length=64)
    facts: dict[str, Any] | None = Field(default=None, sa_type=JSONType)  # latest good facts
    # The latest facts' products as distinct [name, version] pairs: what the metrics count,
    # kept small so that a scrape need not unpack every host's whole facts document.
    products: list[list[str]] = Field(
        default_factory=list, sa_type=JSONType, sa_column_kwargs={"server_default": sa.text("'[]'")}
    )
    facts_at: datetime | None = _when(nullable=True)
    last_scan_id: int | None = None
    last_scan_at: datetime | None = _when(nullable=True)
    last_outcome: str | None = Field(default=None, max_length=32)
    last_reason: str | None = Field(default=None, max_length=500)
    last_success_at: datetime | None = _when(nullable=True)
    consecutive_failures: int = 0
    next_due_at: datetime | None = _when(nullable=True, index=True)
    rescan_request_id: int | None = Field(default=None, index=True)  # set while a rescan waits
    lease_owner: str | None = Field(default=None, max_length=100, index=True)
    lease_expires_at: datetime | None = _when(nullable=True)
    # Raised by every claim: a result whose claim is no longer the latest (its owner was
    # taken for dead and another took the host) must not overwrite the newer one.
    claim_generation: int = Field(default=0, sa_column_kwargs={"server_default": sa.text("0")})


class StatusChange(SQLModel, table=True):
    """A host's status transition: the history that draws deployment progress over time."""

    __tablename__ = "status_change"
    __table_args__ = (sa.Index("ix_status_change_host_at", "host_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    host_id: int = Field(foreign_key="host.id", ondelete="CASCADE")
    at: datetime = _when(index=True)
    from_status: str = Field(max_length=16)
    to_status: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=200)


class RescanRequest(SQLModel, table=True):
    """An on-demand rescan asked for by a user; a daemon picks it up."""

    __tablename__ = "rescan_request"

    id: int | None = Field(default=None, primary_key=True)
    selector: dict[str, Any] = Field(sa_type=JSONType)  # hosts / practice / ccg / status
    requested_at: datetime = _when()
    requested_by: str = Field(max_length=100)
    state: str = Field(default="pending", max_length=16, index=True)  # pending, running, done
    host_count: int = 0
    done_count: int = 0
    finished_at: datetime | None = _when(nullable=True)


class PolicyVersion(SQLModel, table=True):
    """A policy as applied; the newest row is the active policy every replica uses."""

    __tablename__ = "policy_version"

    id: int | None = Field(default=None, primary_key=True)
    policy_id: str = Field(max_length=100)
    content_hash: str = Field(max_length=64)
    content: str = Field(sa_type=sa.Text)
    applied_at: datetime = _when()
    applied_by: str = Field(max_length=100)


class Waiver(SQLModel, table=True):
    """An exemption of a host or a whole practice from one rule until a date."""

    __tablename__ = "waiver"

    id: int | None = Field(default=None, primary_key=True)
    host_id: int | None = Field(default=None, foreign_key="host.id", ondelete="CASCADE")
    practice_code: str | None = Field(default=None, max_length=16)
    rule_id: str = Field(max_length=100)
    until: datetime = _when()
    reason: str = Field(max_length=500)
    created_by: str = Field(max_length=100)
    created_at: datetime = _when()
    revoked_at: datetime | None = _when(nullable=True)


class CredentialSuspension(SQLModel, table=True):
    """A credential profile the lockout guard stopped using, and until when."""

    __tablename__ = "credential_suspension"

    profile: str = Field(primary_key=True, max_length=64)
    suspended_at: datetime = _when()
    until: datetime | None = _when(nullable=True)  # None: until someone resumes it
    failures: int
    reason: str = Field(max_length=500)


class SSHHostKey(SQLModel, table=True):
    """An SSH host key pinned on first use; a different key later is refused."""

    __tablename__ = "ssh_host_key"

    host: str = Field(primary_key=True, max_length=253)
    port: int = Field(primary_key=True)
    key_type: str = Field(max_length=64)
    fingerprint: str = Field(max_length=128)  # SHA256:..., as ssh-keygen -l prints it
    public_key: str = Field(sa_type=sa.Text)
    pinned_at: datetime = _when()


class ScannerInstance(SQLModel, table=True):
    """A running daemon, so that commands can tell whether anyone will pick up a rescan."""

    __tablename__ = "scanner_instance"

    id: str = Field(primary_key=True, max_length=100)  # also the lease owner name
    # "daemon" picks up rescans; "scan" is a one-shot `cmscan scan` holding claims meanwhile.
    kind: str = Field(
        default="daemon", max_length=16, sa_column_kwargs={"server_default": "daemon"}
    )
    hostname: str = Field(max_length=253)
    pid: int
    version: str = Field(max_length=32)
    started_at: datetime = _when()
    heartbeat_at: datetime = _when(index=True)
    stopped_at: datetime | None = _when(nullable=True)


class AccessUser(SQLModel, table=True):
    """A smartcard holder from the latest users report: only what the access view needs."""

    __tablename__ = "access_user"

    user_id: str = Field(primary_key=True, max_length=12)  # CIS UUID, 12 digits
    name: str = Field(default="", max_length=200)
    first_seen_at: datetime = _when()


class AccessGrant(SQLModel, table=True):
    """The activity codes one user holds at one organisation, and whether they open the
    dashboard there under the active policy (graded on import and on `policy apply`)."""

    __tablename__ = "access_grant"

    user_id: str = Field(
        primary_key=True, max_length=12, foreign_key="access_user.user_id", ondelete="CASCADE"
    )
    org_code: str = Field(primary_key=True, max_length=16, index=True)
    codes: list[str] = Field(default_factory=list, sa_type=JSONType)
    has_access: bool = False
    access_since: datetime | None = _when(nullable=True)  # when has_access last became true
    first_seen_at: datetime = _when()


class AccessChange(SQLModel, table=True):
    """A user gaining or losing dashboard access at an organisation: progress over time.
    Kept for `access.keep_history`; `cmscan access purge` removes it with the rest."""

    __tablename__ = "access_change"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when(index=True)
    user_id: str = Field(max_length=12, index=True)
    org_code: str = Field(max_length=16)
    gained: bool
    cause: str = Field(max_length=16)  # import (the report changed) or policy (the rule did)


class AccessImport(SQLModel, table=True):
    """One users report imported: when, from which file, and how much it held."""

    __tablename__ = "access_import"

    id: int | None = Field(default=None, primary_key=True)
    imported_at: datetime = _when(index=True)
    source: str = Field(max_length=200)
    users: int
    grants: int
