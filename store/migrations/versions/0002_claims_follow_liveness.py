"""Claims follow liveness: a generation per claim, the lease owner indexed, instance kinds."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("host_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("claim_generation", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.create_index(
            batch_op.f("ix_host_state_lease_owner"), ["lease_owner"], unique=False
        )
    with op.batch_alter_table("scanner_instance", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="daemon", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("scanner_instance", schema=None) as batch_op:
        batch_op.drop_column("kind")
    with op.batch_alter_table("host_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_host_state_lease_owner"))
        batch_op.drop_column("claim_generation")
