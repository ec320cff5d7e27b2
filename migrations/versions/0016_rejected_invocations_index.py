"""trigger_invocations: a partial index of rejected invocations replaces the index on
(trigger_id, at), which only the count of a trigger's recent refusals used (ADR 0065)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# Spelled as domain.persistence.tables.REJECTED_INVOCATIONS (a migration does not import the app).
REJECTED_INVOCATIONS = "outcome = 'rejected'"


def upgrade() -> None:
    op.drop_index("ix_trigger_invocations_trigger_id_at", table_name="trigger_invocations")
    op.create_index(
        "ix_trigger_invocations_rejected",
        "trigger_invocations",
        ["trigger_id", "at"],
        unique=False,
        postgresql_where=sa.text(REJECTED_INVOCATIONS),
        sqlite_where=sa.text(REJECTED_INVOCATIONS),
    )


def downgrade() -> None:
    op.drop_index("ix_trigger_invocations_rejected", table_name="trigger_invocations")
    op.create_index(
        "ix_trigger_invocations_trigger_id_at",
        "trigger_invocations",
        ["trigger_id", "at"],
        unique=False,
    )
