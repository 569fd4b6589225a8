"""Dashboard access: smartcard holders, their activity codes per organisation, and history."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Column types spelled out here so this revision never changes when the models do.
UTC_TIME = sa.DateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_user",
        sa.Column("user_id", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("first_seen_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "access_grant",
        sa.Column("user_id", sa.String(length=12), nullable=False),
        sa.Column("org_code", sa.String(length=16), nullable=False),
        sa.Column("codes", JSON_DOC, nullable=False),
        sa.Column("has_access", sa.Boolean(), nullable=False),
        sa.Column("access_since", UTC_TIME, nullable=True),
        sa.Column("first_seen_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["access_user.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "org_code"),
    )
    op.create_index(op.f("ix_access_grant_org_code"), "access_grant", ["org_code"], unique=False)
    op.create_table(
        "access_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("user_id", sa.String(length=12), nullable=False),
        sa.Column("org_code", sa.String(length=16), nullable=False),
        sa.Column("gained", sa.Boolean(), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_access_change_at"), "access_change", ["at"], unique=False)
    op.create_index(op.f("ix_access_change_user_id"), "access_change", ["user_id"], unique=False)
    op.create_table(
        "access_import",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("imported_at", UTC_TIME, nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column("grants", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_access_import_imported_at"), "access_import", ["imported_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_access_import_imported_at"), table_name="access_import")
    op.drop_table("access_import")
    op.drop_index(op.f("ix_access_change_user_id"), table_name="access_change")
    op.drop_index(op.f("ix_access_change_at"), table_name="access_change")
    op.drop_table("access_change")
    op.drop_index(op.f("ix_access_grant_org_code"), table_name="access_grant")
    op.drop_table("access_grant")
    op.drop_table("access_user")
