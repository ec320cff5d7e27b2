"""The relational schema (SQLAlchemy Core tables); Alembic migrations mirror it.

Every row carries ``workspace_id``: queries always filter on it, so an id from another
workspace is indistinguishable from a missing one.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

JsonDoc = JSON().with_variant(JSONB(), "postgresql")
Id = String(64)
Stamp = DateTime(timezone=True)

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
)

workspace_members = Table(
    "workspace_members",
    metadata,
    Column("workspace_id", Id, ForeignKey("workspaces.id"), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("created_at", Stamp, nullable=False),
    Index("ix_workspace_members_subject", "subject", "workspace_id"),
)

crews = Table(
    "crews",
    metadata,
    Column("id", Id, primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
    UniqueConstraint("workspace_id", "name", name="uq_crews_workspace_id_name"),
    Index("ix_crews_workspace_id_id", "workspace_id", "id"),
)

members = Table(
    "members",
    metadata,
    Column("id", Id, primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("crew_id", Id, ForeignKey("crews.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("description", Text, nullable=False, default=""),
    # Denormalised pointers, kept in step by the use cases in one transaction.
    Column("active_version_id", Id, nullable=True),
    Column("active_version_number", Integer, nullable=True),
    Column("draft_version_number", Integer, nullable=True),
    Column("latest_version_number", Integer, nullable=False),
    Column("identity", String(128), nullable=True),
    Column("handoffs_updated_at", Stamp, nullable=True),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
    UniqueConstraint("workspace_id", "name", name="uq_members_workspace_id_name"),
    Index("ix_members_workspace_id_id", "workspace_id", "id"),
    Index("ix_members_crew_id", "crew_id"),
)

member_versions = Table(
    "member_versions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("definition", JsonDoc, nullable=False),
    Column("program", JsonDoc, nullable=True),
    # The canonical artifact bytes (UTF-8 JSON) exactly as hashed.
    Column("artifact", Text, nullable=True),
    Column("artifact_hash", String(80), nullable=True),
    Column("created_at", Stamp, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("updated_at", Stamp, nullable=False),
    Column("published_at", Stamp, nullable=True),
    Column("published_by", String(255), nullable=True),
    UniqueConstraint("member_id", "number", name="uq_member_versions_member_id_number"),
)

handoffs = Table(
    "handoffs",
    metadata,
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("target_member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("condition", JsonDoc, nullable=True),
    Index("ix_handoffs_workspace_id", "workspace_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("at", Stamp, nullable=False),
    Column("actor_subject", String(255), nullable=False),
    Column("actor_kind", String(16), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject_type", String(32), nullable=False),
    Column("subject_id", Id, nullable=False),
    Column("data", JsonDoc, nullable=False),
    Index("ix_audit_log_workspace_id_at", "workspace_id", "at"),
)

__all__ = [
    "audit_log",
    "crews",
    "handoffs",
    "member_versions",
    "members",
    "metadata",
    "workspace_members",
    "workspaces",
]


# -- the run vertical ------------------------------------------------------------------------

runs = Table(
    "runs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("crew_id", Id, nullable=False),
    Column("version_id", Id, ForeignKey("member_versions.id"), nullable=False),
    Column("version_number", Integer, nullable=False),
    Column("origin", String(16), nullable=False),
    Column("status", String(24), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("parent_run_id", Id, ForeignKey("runs.id"), nullable=True),
    Column("depth", Integer, nullable=False),
    Column("input", JsonDoc, nullable=False),
    Column("output", JsonDoc, nullable=True),
    Column("error", JsonDoc, nullable=True),
    # The engine's resumable state: the conversation so far and the call awaiting approval.
    Column("state", JsonDoc, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
    Column("started_at", Stamp, nullable=True),
    Column("finished_at", Stamp, nullable=True),
    Column("claimed_by", String(128), nullable=True),
    Column("lease_expires_at", Stamp, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("next_seq", Integer, nullable=False),
    Column("tokens_in", Integer, nullable=False),
    Column("tokens_out", Integer, nullable=False),
    Column("cost_units", Float, nullable=False),
    Index("ix_runs_workspace_id_id", "workspace_id", "id"),
    Index("ix_runs_status_lease", "status", "lease_expires_at"),
    Index("ix_runs_member_id", "member_id"),
)

run_events = Table(
    "run_events",
    metadata,
    Column("run_id", Id, ForeignKey("runs.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("at", Stamp, nullable=False),
    Column("type", String(48), nullable=False),
    Column("data", JsonDoc, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("workspace_id", Id, ForeignKey("workspaces.id"), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("request_hash", String(80), nullable=False),
    Column("run_id", Id, ForeignKey("runs.id"), nullable=False),
    Column("created_at", Stamp, nullable=False),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Id, primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("run_id", Id, ForeignKey("runs.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("version_id", Id, ForeignKey("member_versions.id"), nullable=False),
    Column("version_number", Integer, nullable=False),
    Column("tool", String(64), nullable=False),
    Column("effect_class", String(24), nullable=False),
    Column("arguments", JsonDoc, nullable=False),
    Column("call_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("decided_by", String(255), nullable=True),
    Column("decided_at", Stamp, nullable=True),
    Column("created_at", Stamp, nullable=False),
    Index("ix_approvals_workspace_id_id", "workspace_id", "id"),
)

cost_ledger = Table(
    "cost_ledger",
    metadata,
    Column("id", Id, primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("run_id", Id, ForeignKey("runs.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("at", Stamp, nullable=False),
    Column("model", String(128), nullable=False),
    Column("tokens_in", Integer, nullable=False),
    Column("tokens_out", Integer, nullable=False),
    Column("cost_units", Float, nullable=False),
    Index("ix_cost_ledger_workspace_id_at", "workspace_id", "at"),
)

notes = Table(
    "notes",
    metadata,
    Column("workspace_id", Id, ForeignKey("workspaces.id"), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Stamp, nullable=False),
)

# -- authoring -------------------------------------------------------------------------------

authoring_sessions = Table(
    "authoring_sessions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("crew_id", Id, ForeignKey("crews.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=True),
    # The whole conversation: [{role, content, at}], re-read by every turn.
    Column("messages", JsonDoc, nullable=False),
    Column("draft", JsonDoc, nullable=True),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
    Index("ix_authoring_sessions_workspace_id_id", "workspace_id", "id"),
)

# -- triggers, schedules, webhook invocations (issue 4) -----------------------------------

# -- live stream event log (issue 4) ----------------------------------------------------------

# -- identity: users, login states, session codes, refresh tokens (issue 5) --------------------
