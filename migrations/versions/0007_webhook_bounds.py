"""bounds for webhooks: delivery keys expire after the de-duplication window, and a trigger's
recent refusals are counted (the bound on logging forged deliveries)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_webhook_deliveries_trigger_id_created_at",
        "webhook_deliveries",
        ["trigger_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_trigger_invocations_trigger_id_at",
        "trigger_invocations",
        ["trigger_id", "at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_trigger_invocations_trigger_id_at", table_name="trigger_invocations")
    op.drop_index("ix_webhook_deliveries_trigger_id_created_at", table_name="webhook_deliveries")
