"""workspace event log for the live stream

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspace_event_counters",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_workspace_event_counters_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_workspace_event_counters")),
    )
    op.create_table(
        "workspace_events",
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "seq", name=op.f("pk_workspace_events")),
    )
    with op.batch_alter_table("workspace_events", schema=None) as batch_op:
        batch_op.create_index("ix_workspace_events_created_at", ["created_at"], unique=False)

    op.create_table(
        "stream_tickets",
        sa.Column("ticket_hash", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_stream_tickets_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("ticket_hash", name=op.f("pk_stream_tickets")),
    )
    with op.batch_alter_table("stream_tickets", schema=None) as batch_op:
        batch_op.create_index("ix_stream_tickets_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stream_tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_stream_tickets_expires_at")
    op.drop_table("stream_tickets")

    with op.batch_alter_table("workspace_events", schema=None) as batch_op:
        batch_op.drop_index("ix_workspace_events_created_at")
    op.drop_table("workspace_events")
    op.drop_table("workspace_event_counters")
