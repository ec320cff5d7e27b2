"""edits (issue 14): members can be archived; a webhook's previous secret keeps verifying for
a grace period after a rotation, and the invocation log says which secret verified

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("triggers") as batch:
        batch.add_column(sa.Column("previous_secret_ciphertext", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("trigger_invocations") as batch:
        batch.add_column(sa.Column("secret", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trigger_invocations") as batch:
        batch.drop_column("secret")
    with op.batch_alter_table("triggers") as batch:
        batch.drop_column("previous_secret_expires_at")
        batch.drop_column("previous_secret_ciphertext")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("archived_at")
