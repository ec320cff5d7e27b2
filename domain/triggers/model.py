"""Triggers and their invocation log: plain, immutable domain objects."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any


class TriggerKind(enum.Enum):
    SCHEDULE = "schedule"
    WEBHOOK = "webhook"
    MAIL = "mail"  # deferred: creating one answers NotImplemented


class InvocationOutcome(enum.Enum):
    ACCEPTED = "accepted"  # a run was started
    REPLAYED = "replayed"  # a duplicate delivery: answered with the original run
    REJECTED = "rejected"  # nothing was started; ``reason`` says why


@dataclass(frozen=True)
class Trigger:
    id: str
    workspace_id: str
    member_id: str
    kind: TriggerKind
    name: str
    description: str
    enabled: bool
    cron: str | None
    timezone: str | None
    input: dict[str, Any] | None = field(hash=False)
    secret_ciphertext: str | None = field(repr=False)
    active_since: datetime
    created_by: str
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    #: The secret a rotation replaced, and until when it still verifies deliveries.
    previous_secret_ciphertext: str | None = field(default=None, repr=False)
    previous_secret_expires_at: datetime | None = None

    @property
    def subject(self) -> str:
        """Who runs started by this trigger are ``created_by``: the trigger itself."""
        return f"trigger:{self.id}"

    @property
    def live(self) -> bool:
        return self.deleted_at is None

    def with_enabled(self, enabled: bool, now: datetime) -> Trigger:
        """Enabled or disabled; re-enabling starts the schedule afresh (``active_since``), so
        slots from before it never fire."""
        if enabled is self.enabled:
            return self
        since = now if enabled else self.active_since
        return replace(self, enabled=enabled, active_since=since, updated_at=now)

    def edited(self, now: datetime, changes: TriggerChanges) -> Trigger:
        """The trigger with ``changes`` applied. A new cron or time zone takes effect from
        the next slot: ``active_since`` moves to now, so no missed slot is ever back-filled."""
        rescheduled = (changes.cron is not None and changes.cron != self.cron) or (
            changes.timezone is not None and changes.timezone != self.timezone
        )
        return replace(
            self,
            name=self.name if changes.name is None else changes.name,
            description=self.description if changes.description is None else changes.description,
            cron=self.cron if changes.cron is None else changes.cron,
            timezone=self.timezone if changes.timezone is None else changes.timezone,
            input=self.input if changes.input is None else changes.input,
            active_since=now if rescheduled else self.active_since,
            updated_at=now,
        )

    def with_rotated_secret(
        self, ciphertext: str, previous_expires_at: datetime | None, now: datetime
    ) -> Trigger:
        """The trigger with a new secret; the old one verifies until ``previous_expires_at``
        (None: not at all)."""
        return replace(
            self,
            secret_ciphertext=ciphertext,
            previous_secret_ciphertext=None
            if previous_expires_at is None
            else self.secret_ciphertext,
            previous_secret_expires_at=previous_expires_at,
            updated_at=now,
        )

    def deleted(self, now: datetime) -> Trigger:
        return replace(self, enabled=False, deleted_at=now, updated_at=now)


@dataclass(frozen=True)
class TriggerChanges:
    """What a trigger edit changes; None keeps a field."""

    name: str | None = None
    description: str | None = None
    cron: str | None = None
    timezone: str | None = None
    input: dict[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class RotatedSecret:
    """A trigger with a new secret, shown this once, and until when the old one verifies."""

    trigger: Trigger
    secret: str
    previous_secret_expires_at: datetime | None


@dataclass(frozen=True)
class WebhookSettings:
    #: How long a webhook delivery key (signature, Idempotency-Key, body hash) is remembered.
    dedup_seconds: float
    #: Refused webhook deliveries logged per trigger and minute; more are refused unlogged.
    refusals_logged_per_minute: int


@dataclass(frozen=True)
class CreatedTrigger:
    """A new trigger and, for a webhook, its secret: shown this once, never again."""

    trigger: Trigger
    secret: str | None


@dataclass(frozen=True)
class Invocation:
    id: str
    workspace_id: str
    trigger_id: str
    at: datetime
    source: str
    outcome: InvocationOutcome
    reason: str | None
    run_id: str | None
    slot: datetime | None
    delivery_key: str | None
    #: Which secret verified a webhook delivery: ``current`` or ``previous``.
    secret: str | None = None


@dataclass(frozen=True)
class ScheduleView:
    """A schedule trigger with its next slot (None when disabled or never matching)."""

    trigger: Trigger
    next_run_at: datetime | None
    last_slot: datetime | None


@dataclass(frozen=True)
class WebhookDelivery:
    """What ingress received, exactly as received (the signature covers the raw bytes)."""

    trigger_id: str
    raw_body: bytes
    body: dict[str, Any] = field(hash=False)
    timestamp: str
    signature: str
    idempotency_key: str | None = None


@dataclass(frozen=True)
class WebhookResult:
    run_id: str
    trigger_id: str
    replayed: bool
