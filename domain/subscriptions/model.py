"""Event subscriptions and their deliveries (issue 16): pure data, no persistence."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

#: The event types a subscription may ask for (``ping`` is sent only by the test operation).
EVENT_TYPES: tuple[str, ...] = (
    "run.succeeded",
    "run.failed",
    "run.cancelled",
    "approval.requested",
    "approval.decided",
    "approval.expired",
    "trigger.fired",
    "subscription.disabled",
    "budget.warning",
    "budget.exceeded",
)

#: The longest wait between two attempts.
MAX_BACKOFF_SECONDS = 3600.0


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class Subscription:
    id: str
    workspace_id: str
    url: str
    event_types: tuple[str, ...]
    enabled: bool
    #: The signing secret sealed with the deployment's key material (never in the clear).
    secret_ciphertext: str
    #: The last workspace event sequence number looked at (deliveries start after it).
    cursor: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    #: After a rotation: the replaced secret (sealed), which also signs deliveries until
    #: ``previous_secret_expires_at`` (ADR 0045).
    previous_secret_ciphertext: str | None = None
    previous_secret_expires_at: datetime | None = None

    def previous_secret_live(self, now: datetime) -> str | None:
        """The sealed previous secret while its grace period lasts, else None."""
        expires = self.previous_secret_expires_at
        if self.previous_secret_ciphertext is None or expires is None or now >= expires:
            return None
        return self.previous_secret_ciphertext


@dataclass(frozen=True)
class Delivery:
    id: str
    subscription_id: str
    workspace_id: str
    #: The event id, as on ``/v1/stream`` (a ``ping`` carries its delivery id).
    event_id: str
    event_type: str
    #: The exact JSON body sent (signed as is).
    body: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    response_code: int | None
    latency_ms: int | None
    error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class DeliveryResponse:
    """What the target answered: its status code and ``Retry-After`` seconds, if any."""

    status: int
    retry_after_seconds: float | None = None


def retryable(status: int) -> bool:
    """Timeouts and network errors are retried too (they raise); of the answers, 5xx and 429."""
    return status == 429 or status >= 500


def backoff_seconds(
    attempts: int, base: float, jitter: random.Random, retry_after: float | None = None
) -> float:
    """The wait after the ``attempts``-th failed attempt: exponential from ``base``, capped at
    an hour, with full jitter on its upper half; a ``Retry-After`` asking longer wins."""
    ceiling: float = min(MAX_BACKOFF_SECONDS, base * float(2 ** min(attempts - 1, 30)))
    wait: float = ceiling / 2 + jitter.uniform(0, ceiling / 2)
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_BACKOFF_SECONDS))
    return wait
