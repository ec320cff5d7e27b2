"""runs carry the W3C traceparent they were queued under (ADR 0047); the subscription
backlog gauge has an index (ADR 0048) (issue 19)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("traceparent", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_subscription_deliveries_status_created_at",
        "subscription_deliveries",
        ["status", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_subscription_deliveries_status_created_at", "subscription_deliveries")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("traceparent")
