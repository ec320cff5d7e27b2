"""runs: a partial index of unfinished (queued and running) runs in id order replaces the index
on (status, lease_expires_at) (ADR 0061)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# Spelled as domain.persistence.tables.UNFINISHED_RUNS (a migration does not import the app).
UNFINISHED_RUNS = "status IN ('queued', 'running')"


def upgrade() -> None:
    op.drop_index("ix_runs_status_lease", table_name="runs")
    op.create_index(
        "ix_runs_unfinished",
        "runs",
        ["id"],
        unique=False,
        postgresql_where=sa.text(UNFINISHED_RUNS),
        sqlite_where=sa.text(UNFINISHED_RUNS),
    )


def downgrade() -> None:
    op.drop_index("ix_runs_unfinished", table_name="runs")
    op.create_index("ix_runs_status_lease", "runs", ["status", "lease_expires_at"], unique=False)
