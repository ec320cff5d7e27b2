"""The relational schema (SQLAlchemy Core tables); Alembic migrations mirror it.

Every capability's repository reads and writes these tables; nothing else touches them.

Every row carries ``workspace_id``: queries always filter on it, so an id from another
workspace is indistinguishable from a missing one.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
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
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

#: The predicate of the partial index ``ix_runs_unfinished``, as queries must spell it.
UNFINISHED_RUNS = "status IN ('queued', 'running')"

#: The predicate of the partial index ``ix_trigger_invocations_rejected``, as queries must
#: spell it.
REJECTED_INVOCATIONS = "outcome = 'rejected'"

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
    # Set while the member is archived (issue 14): not runnable, hidden from default lists.
    Column("archived_at", Stamp, nullable=True),
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
    Column("deadline_at", Stamp, nullable=True),
    # The W3C traceparent the run was queued under (ADR 0047); None when untraced.
    Column("traceparent", String(64), nullable=True),
    Index("ix_runs_workspace_id_id", "workspace_id", "id"),
    # Queued and running runs only, in id order: the claim's and the overdue sweep's index. A
    # partial index, because under load most entries of a full one on status point at dead row
    # versions on PostgreSQL (every step updates the run), and a bitmap scan of them cost 2-4 ms
    # per claim between vacuums (ADR 0061); an ordered scan of this one marks them dead as it
    # passes. Queries name ``UNFINISHED_RUNS`` literally: neither planner proves a partial
    # index's predicate from bound parameters.
    Index(
        "ix_runs_unfinished",
        "id",
        postgresql_where=text(UNFINISHED_RUNS),
        sqlite_where=text(UNFINISHED_RUNS),
    ),
    Index("ix_runs_member_id", "member_id"),
    # Listings filtered by status (``GET /v1/runs?status=running``), and by creation time:
    # without it they read every run of the workspace or the member (ADR 0073).
    Index("ix_runs_workspace_id_status_created_at", "workspace_id", "status", "created_at"),
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
    Column("outcome_unknown", Boolean, nullable=False, server_default=text("false")),
    Column("expires_at", Stamp, nullable=True),
    # The budget whose limit this approval is asked for (issue 16; None: a checkpoint's).
    Column("budget_id", Id, nullable=True),
    Index("ix_approvals_workspace_id_id", "workspace_id", "id"),
    Index("ix_approvals_status_expires_at", "status", "expires_at"),
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

# -- tool servers (issue 17) ------------------------------------------------------------------

# An MCP tool server of a workspace and the tools it last listed. The header values are
# secrets: stored only sealed (Fernet token of the JSON object); their names are shown.
tool_servers = Table(
    "tool_servers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("header_names", JsonDoc, nullable=False),
    Column("headers_ciphertext", Text, nullable=True),
    Column("tools", JsonDoc, nullable=False),
    Column("effect_classes", JsonDoc, nullable=False),
    Column("refreshed_at", Stamp, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
    UniqueConstraint("workspace_id", "name", name="uq_tool_servers_workspace_id_name"),
)

# -- event subscriptions (issue 16) -------------------------------------------------------

# Spending limits per scope (issue 16). ``scope_id`` names the crew or member (None: the
# whole workspace); ``timezone`` is the calendar its days and months are counted in.
budgets = Table(
    "budgets",
    metadata,
    Column("id", Id, primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("scope_id", Id, nullable=True),
    Column("period", String(8), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("limit_units", Float, nullable=False),
    Column("warning_percent", Integer, nullable=False),
    Column("on_exceeded", String(16), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
    Index("ix_budgets_workspace_id_id", "workspace_id", "id"),
)

# What one budget spent in one period (``2026-11-30`` or ``2026-11``): settled cost units, the
# units reserved by model calls in flight, and when the warning and the limit were reached
# (each announced once per period). Every change is one conditional UPDATE of this row.
budget_spends = Table(
    "budget_spends",
    metadata,
    Column("budget_id", Id, ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True),
    Column("period", String(16), primary_key=True),
    Column("workspace_id", Id, nullable=False),
    Column("spent", Float, nullable=False),
    Column("reserved", Float, nullable=False),
    Column("warned_at", Stamp, nullable=True),
    Column("exceeded_at", Stamp, nullable=True),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("event_types", JsonDoc, nullable=False),
    Column("enabled", Boolean, nullable=False),
    # The HMAC signing secret, encrypted (Fernet token); never stored in the clear.
    Column("secret_ciphertext", Text, nullable=False),
    # After a rotation, deliveries are signed with the secret it replaced too, until it expires.
    Column("previous_secret_ciphertext", Text, nullable=True),
    Column("previous_secret_expires_at", Stamp, nullable=True),
    # The last workspace event sequence number the delivery worker has looked at.
    Column("cursor", BigInteger, nullable=False),
    Column("lease_owner", String(255), nullable=True),
    Column("lease_until", Stamp, nullable=True),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
    Index("ix_subscriptions_workspace_id_id", "workspace_id", "id"),
)

subscription_deliveries = Table(
    "subscription_deliveries",
    metadata,
    Column("id", Id, primary_key=True),
    Column("subscription_id", Id, ForeignKey("subscriptions.id"), nullable=False),
    Column("workspace_id", Id, nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(48), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Stamp, nullable=True),
    Column("response_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=True),
    Column("error", String(500), nullable=True),
    Column("created_at", Stamp, nullable=False),
    Column("delivered_at", Stamp, nullable=True),
    Index("ix_subscription_deliveries_subscription_id_status", "subscription_id", "status", "id"),
    # The backlog gauge (scaicrew_subscription_deliveries_pending, ADR 0048).
    Index("ix_subscription_deliveries_status_created_at", "status", "created_at"),
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

# A deleted trigger keeps its row (``deleted_at`` set): its invocation log and its runs stay.
triggers = Table(
    "triggers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("name", String(100), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False),
    Column("cron", String(200), nullable=True),
    Column("timezone", String(64), nullable=True),
    Column("input", JsonDoc, nullable=True),
    # The webhook's HMAC secret, encrypted (Fernet token); never stored in the clear.
    Column("secret_ciphertext", Text, nullable=True),
    # After a rotation, the secret it replaced keeps verifying until it expires (issue 14).
    Column("previous_secret_ciphertext", Text, nullable=True),
    Column("previous_secret_expires_at", Stamp, nullable=True),
    # Slots before this instant are never fired (set at creation and on each re-enable).
    Column("active_since", Stamp, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
    Column("deleted_at", Stamp, nullable=True),
    Index("ix_triggers_workspace_id_id", "workspace_id", "id"),
    Index("ix_triggers_kind_enabled", "kind", "enabled"),
)

# One row per fired schedule slot: the primary key is the de-duplication (two schedulers that
# race for a slot insert the same key; exactly one insert wins, in the run's transaction).
schedule_slots = Table(
    "schedule_slots",
    metadata,
    Column("trigger_id", Id, ForeignKey("triggers.id"), primary_key=True),
    Column("slot", Stamp, primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("run_id", Id, ForeignKey("runs.id"), nullable=True),
    Column("created_at", Stamp, nullable=False),
)

# Webhook de-duplication keys (``sig:``, ``key:`` or ``body:`` prefixed), each naming the run
# the first delivery started; a replay finds its key here and answers that run.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("trigger_id", Id, ForeignKey("triggers.id"), primary_key=True),
    Column("delivery_key", String(200), primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("body_hash", String(80), nullable=False),
    Column("run_id", Id, ForeignKey("runs.id"), nullable=False),
    Column("created_at", Stamp, nullable=False),
    # Keys are forgotten after the de-duplication window, oldest first, trigger by trigger.
    Index("ix_webhook_deliveries_trigger_id_created_at", "trigger_id", "created_at"),
)

# The append-only log of every firing: accepted, replayed or rejected.
trigger_invocations = Table(
    "trigger_invocations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("trigger_id", Id, ForeignKey("triggers.id"), nullable=False),
    Column("at", Stamp, nullable=False),
    Column("source", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", String(48), nullable=True),
    Column("run_id", Id, ForeignKey("runs.id"), nullable=True),
    Column("slot", Stamp, nullable=True),
    Column("delivery_key", String(200), nullable=True),
    # Which secret verified a webhook delivery: ``current`` or ``previous`` (after a rotation).
    Column("secret", String(16), nullable=True),
    Index("ix_trigger_invocations_trigger_id_id", "trigger_id", "id"),
    # Counting a trigger's recent refusals (the bound on logging forged deliveries). Partial:
    # with every invocation in it, the count walked all of the last minute's accepted and
    # replayed deliveries to find the refused ones, so a forged delivery cost more the busier
    # the trigger was (4 ms each after 8,000 accepted in a minute); and an accepted delivery
    # need not update it (ADR 0065).
    Index(
        "ix_trigger_invocations_rejected",
        "trigger_id",
        "at",
        postgresql_where=text(REJECTED_INVOCATIONS),
        sqlite_where=text(REJECTED_INVOCATIONS),
    ),
)

# -- live stream event log (issue 4) ----------------------------------------------------------

# One row per workspace: the last sequence number handed out. Writers bump it with an upsert
# inside their transaction; on PostgreSQL the row lock it takes makes commit order equal
# sequence order within a workspace, so a live reader never sees a later id before an earlier.
workspace_event_counters = Table(
    "workspace_event_counters",
    metadata,
    Column("workspace_id", Id, ForeignKey("workspaces.id"), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)

# The durable, gap-free event log behind GET /v1/stream (ids are ``seq``). No foreign key on
# purpose: its check would take a KEY SHARE lock on the workspace row while the writer holds
# the counter row lock (the counter row's own key already proves the workspace exists).
workspace_events = Table(
    "workspace_events",
    metadata,
    Column("workspace_id", Id, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("type", String(48), nullable=False),
    Column("data", JsonDoc, nullable=False),
    Column("created_at", Stamp, nullable=False),
    Index("ix_workspace_events_created_at", "created_at"),
)

# Short-lived, single-use tickets for EventSource clients; only a hash of the ticket is stored.
stream_tickets = Table(
    "stream_tickets",
    metadata,
    Column("ticket_hash", String(64), primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("expires_at", Stamp, nullable=False),
    Index("ix_stream_tickets_expires_at", "expires_at"),
)

# -- identity: users, login states, session codes, refresh tokens (issue 5) --------------------

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("email", String(320), nullable=True),
    Column("name", String(200), nullable=True),
    Column("created_at", Stamp, nullable=False),
    Column("last_login_at", Stamp, nullable=False),
    UniqueConstraint("subject", name="uq_users_subject"),
)

# One row per tenant, inserted by its first user's login: the insert that wins makes that user
# the admin of the tenant's default workspace (racing first logins cannot both win).
tenant_bootstraps = Table(
    "tenant_bootstraps",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("subject", String(255), nullable=False),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=True),
    Column("created_at", Stamp, nullable=False),
)

# Secrets are stored as SHA-256 hex digests only: a database dump cannot be replayed.
login_states = Table(
    "login_states",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("nonce", String(128), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("expires_at", Stamp, nullable=False),
    # S256 of the front end's login verifier (ADR 0031); NULL only for rows older than 0010.
    Column("login_challenge", String(64), nullable=True),
    Index("ix_login_states_expires_at", "expires_at"),
)

session_codes = Table(
    "session_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("subject", String(255), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("expires_at", Stamp, nullable=False),
    Column("redeemed_at", Stamp, nullable=True),
    Column("login_challenge", String(64), nullable=True),
    Index("ix_session_codes_expires_at", "expires_at"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", Id, primary_key=True),
    Column("family_id", Id, nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("expires_at", Stamp, nullable=False),
    Column("rotated_at", Stamp, nullable=True),
    Column("revoked_at", Stamp, nullable=True),
    UniqueConstraint("token_hash", name="uq_refresh_tokens_token_hash"),
    Index("ix_refresh_tokens_family_id", "family_id"),
)

# -- access: workspace API keys ----------------------------------------------------------------

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("workspace_id", Id, ForeignKey("workspaces.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("expires_at", Stamp, nullable=True),
    Column("last_used_at", Stamp, nullable=True),
    Column("revoked_at", Stamp, nullable=True),
    UniqueConstraint("secret_hash", name="uq_api_keys_secret_hash"),
    Index("ix_api_keys_workspace_id_created_at", "workspace_id", "created_at"),
)
