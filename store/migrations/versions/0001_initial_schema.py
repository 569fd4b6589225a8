"""Initial schema: organisations, hosts, scans, host state, history, rescans, policies."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Column types spelled out here so this revision never changes when the models do.
UTC_TIME = sa.DateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credential_suspension",
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("suspended_at", UTC_TIME, nullable=False),
        sa.Column("until", UTC_TIME, nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("profile"),
    )
    op.create_table(
        "host",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hostname", sa.String(length=253), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("transport", sa.String(length=16), nullable=False),
        sa.Column("practice_code", sa.String(length=16), nullable=True),
        sa.Column("pcn_code", sa.String(length=16), nullable=True),
        sa.Column("ccg_code", sa.String(length=16), nullable=True),
        sa.Column("icb_code", sa.String(length=16), nullable=True),
        sa.Column("site", sa.String(length=200), nullable=True),
        sa.Column("credential_profile", sa.String(length=64), nullable=False),
        sa.Column("tags", JSON_DOC, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("retired_at", UTC_TIME, nullable=True),
        sa.Column("first_seen_at", UTC_TIME, nullable=False),
        sa.Column("last_seen_at", UTC_TIME, nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("hostname"),
    )
    with op.batch_alter_table("host", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_host_ccg_code"), ["ccg_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_host_practice_code"), ["practice_code"], unique=False)

    op.create_table(
        "organisation",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("parent_code", sa.String(length=16), nullable=True),
        sa.Column("ods_status", sa.String(length=1), nullable=True),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("kind", "code"),
    )
    op.create_table(
        "policy_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.String(length=100), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("applied_at", UTC_TIME, nullable=False),
        sa.Column("applied_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "rescan_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("selector", JSON_DOC, nullable=False),
        sa.Column("requested_at", UTC_TIME, nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("host_count", sa.Integer(), nullable=False),
        sa.Column("done_count", sa.Integer(), nullable=False),
        sa.Column("finished_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rescan_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rescan_request_state"), ["state"], unique=False)

    op.create_table(
        "ssh_host_key",
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("key_type", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("pinned_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("host", "port"),
    )
    op.create_table(
        "host_state",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_since", UTC_TIME, nullable=False),
        sa.Column("failing_rules", JSON_DOC, nullable=False),
        sa.Column("advisories", JSON_DOC, nullable=False),
        sa.Column("verdict", JSON_DOC, nullable=True),
        sa.Column("policy_id", sa.String(length=100), nullable=True),
        sa.Column("policy_hash", sa.String(length=64), nullable=True),
        sa.Column("facts", JSON_DOC, nullable=True),
        sa.Column("products", JSON_DOC, server_default=sa.text("'[]'"), nullable=False),
        sa.Column("facts_at", UTC_TIME, nullable=True),
        sa.Column("last_scan_id", sa.Integer(), nullable=True),
        sa.Column("last_scan_at", UTC_TIME, nullable=True),
        sa.Column("last_outcome", sa.String(length=32), nullable=True),
        sa.Column("last_reason", sa.String(length=500), nullable=True),
        sa.Column("last_success_at", UTC_TIME, nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("next_due_at", UTC_TIME, nullable=True),
        sa.Column("rescan_request_id", sa.Integer(), nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_expires_at", UTC_TIME, nullable=True),
        sa.ForeignKeyConstraint(["host_id"], ["host.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("host_id"),
    )
    with op.batch_alter_table("host_state", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_host_state_next_due_at"), ["next_due_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_host_state_rescan_request_id"), ["rescan_request_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_host_state_status"), ["status"], unique=False)

    op.create_table(
        "scan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("finished_at", UTC_TIME, nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("transport", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("rescan_request_id", sa.Integer(), nullable=True),
        sa.Column("scanner_id", sa.String(length=100), nullable=True),
        sa.Column("facts", JSON_DOC, nullable=True),
        sa.ForeignKeyConstraint(["host_id"], ["host.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("scan", schema=None) as batch_op:
        batch_op.create_index("ix_scan_host_started", ["host_id", "started_at"], unique=False)

    op.create_table(
        "status_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["host_id"], ["host.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("status_change", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_status_change_at"), ["at"], unique=False)
        batch_op.create_index("ix_status_change_host_at", ["host_id", "at"], unique=False)

    op.create_table(
        "waiver",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=True),
        sa.Column("practice_code", sa.String(length=16), nullable=True),
        sa.Column("rule_id", sa.String(length=100), nullable=False),
        sa.Column("until", UTC_TIME, nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("revoked_at", UTC_TIME, nullable=True),
        sa.ForeignKeyConstraint(["host_id"], ["host.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )

    op.create_table(
        "scanner_instance",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("hostname", sa.String(length=253), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("heartbeat_at", UTC_TIME, nullable=False),
        sa.Column("stopped_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("scanner_instance", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scanner_instance_heartbeat_at"), ["heartbeat_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("scanner_instance")
    op.drop_table("waiver")
    with op.batch_alter_table("status_change", schema=None) as batch_op:
        batch_op.drop_index("ix_status_change_host_at")
        batch_op.drop_index(batch_op.f("ix_status_change_at"))

    op.drop_table("status_change")
    with op.batch_alter_table("scan", schema=None) as batch_op:
        batch_op.drop_index("ix_scan_host_started")

    op.drop_table("scan")
    with op.batch_alter_table("host_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_host_state_status"))
        batch_op.drop_index(batch_op.f("ix_host_state_rescan_request_id"))
        batch_op.drop_index(batch_op.f("ix_host_state_next_due_at"))

    op.drop_table("host_state")
    op.drop_table("ssh_host_key")
    with op.batch_alter_table("rescan_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rescan_request_state"))

    op.drop_table("rescan_request")
    op.drop_table("policy_version")
    op.drop_table("organisation")
    with op.batch_alter_table("host", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_host_practice_code"))
        batch_op.drop_index(batch_op.f("ix_host_ccg_code"))

    op.drop_table("host")
    op.drop_table("credential_suspension")
