"""runs you can trust: approvals say when an earlier attempt's outcome is unknown and when they
expire; runs have a wall-clock deadline

Revision ID: 0008
Revises: 0011
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(
            sa.Column(
                "outcome_unknown", sa.Boolean(), nullable=False, server_default=sa.text("false")
            )
        )
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_approvals_status_expires_at", "approvals", ["status", "expires_at"], unique=False
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("deadline_at")
    op.drop_index("ix_approvals_status_expires_at", table_name="approvals")
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("outcome_unknown")
