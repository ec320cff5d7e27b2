"""triggers, schedule slots, webhook invocations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "triggers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("input", _json(), nullable=True),
        sa.Column("secret_ciphertext", sa.Text(), nullable=True),
        sa.Column("active_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_triggers_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_triggers_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triggers")),
    )
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.create_index("ix_triggers_kind_enabled", ["kind", "enabled"], unique=False)
        batch_op.create_index("ix_triggers_workspace_id_id", ["workspace_id", "id"], unique=False)

    op.create_table(
        "schedule_slots",
        sa.Column("trigger_id", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.DateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_schedule_slots_run_id_runs")
        ),
        sa.ForeignKeyConstraint(
            ["trigger_id"], ["triggers.id"], name=op.f("fk_schedule_slots_trigger_id_triggers")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_schedule_slots_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("trigger_id", "slot", name=op.f("pk_schedule_slots")),
    )

    op.create_table(
        "webhook_deliveries",
        sa.Column("trigger_id", sa.String(length=64), nullable=False),
        sa.Column("delivery_key", sa.String(length=200), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("body_hash", sa.String(length=80), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_webhook_deliveries_run_id_runs")
        ),
        sa.ForeignKeyConstraint(
            ["trigger_id"], ["triggers.id"], name=op.f("fk_webhook_deliveries_trigger_id_triggers")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_webhook_deliveries_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("trigger_id", "delivery_key", name=op.f("pk_webhook_deliveries")),
    )

    op.create_table(
        "trigger_invocations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("trigger_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("slot", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivery_key", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_trigger_invocations_run_id_runs")
        ),
        sa.ForeignKeyConstraint(
            ["trigger_id"],
            ["triggers.id"],
            name=op.f("fk_trigger_invocations_trigger_id_triggers"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_trigger_invocations_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger_invocations")),
    )
    with op.batch_alter_table("trigger_invocations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_trigger_invocations_trigger_id_id", ["trigger_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("trigger_invocations", schema=None) as batch_op:
        batch_op.drop_index("ix_trigger_invocations_trigger_id_id")
    op.drop_table("trigger_invocations")
    op.drop_table("webhook_deliveries")
    op.drop_table("schedule_slots")
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.drop_index("ix_triggers_workspace_id_id")
        batch_op.drop_index("ix_triggers_kind_enabled")
    op.drop_table("triggers")
