"""runs: an index on (workspace_id, status, created_at) for listings filtered by status (and
by creation time): they read every run of the workspace (or of the member) before
(issue 18, ADR 0073)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_runs_workspace_id_status_created_at",
        "runs",
        ["workspace_id", "status", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_runs_workspace_id_status_created_at", table_name="runs")
