"""access that holds: logins bound to the browser that started them, workspace API keys

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows in flight at upgrade time have no challenge and can no longer be completed (a login
    # lasts minutes at most): the user logs in again.
    with op.batch_alter_table("login_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("login_challenge", sa.String(length=64), nullable=True))
    with op.batch_alter_table("session_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("login_challenge", sa.String(length=64), nullable=True))
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_api_keys_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("secret_hash", name="uq_api_keys_secret_hash"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(
            "ix_api_keys_workspace_id_created_at", ["workspace_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_api_keys_workspace_id_created_at")
    op.drop_table("api_keys")
    with op.batch_alter_table("session_codes", schema=None) as batch_op:
        batch_op.drop_column("login_challenge")
    with op.batch_alter_table("login_states", schema=None) as batch_op:
        batch_op.drop_column("login_challenge")
