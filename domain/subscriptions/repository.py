"""Persistence of subscriptions and their deliveries (nothing here commits).

Leases: a delivery worker claims a subscription with one conditional UPDATE (free or expired
lease only), so two processes never deliver for the same subscription at once; a worker that
dies leaves a lease that runs out and another one takes over (at least once, in order).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from domain.kernel.actor import Actor
from domain.kernel.unit_of_work import UnitOfWork
from domain.persistence import tables
from domain.persistence.sql import utc
from domain.subscriptions.model import Delivery, DeliveryStatus, Subscription


class SubscriptionRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    # -- subscriptions -----------------------------------------------------------------------

    def add(self, subscription: Subscription) -> None:
        self._c.execute(insert(tables.subscriptions).values(**_row(subscription)))

    def save(self, subscription: Subscription) -> None:
        t = tables.subscriptions
        values = _row(subscription)
        del values["id"], values["cursor"]  # the cursor is the delivery worker's
        self._c.execute(update(t).where(t.c.id == subscription.id).values(**values))

    def remove(self, subscription: Subscription) -> None:
        d = tables.subscription_deliveries
        self._c.execute(delete(d).where(d.c.subscription_id == subscription.id))
        t = tables.subscriptions
        self._c.execute(delete(t).where(t.c.id == subscription.id))

    def get(self, workspace_id: str, subscription_id: str) -> Subscription | None:
        t = tables.subscriptions
        row = self._c.execute(
            select(t).where(t.c.workspace_id == workspace_id, t.c.id == subscription_id)
        ).first()
        return None if row is None else _subscription(row)

    def page(self, workspace_id: str, after: str | None, limit: int) -> list[Subscription]:
        t = tables.subscriptions
        stmt = select(t).where(t.c.workspace_id == workspace_id)
        if after is not None:
            stmt = stmt.where(t.c.id > after)
        rows = self._c.execute(stmt.order_by(t.c.id).limit(limit + 1)).all()
        return [_subscription(row) for row in rows]

    def head(self, workspace_id: str) -> int:
        """The workspace's last event sequence number (0: none yet)."""
        counters = tables.workspace_event_counters
        value = self._c.execute(
            select(counters.c.last_seq).where(counters.c.workspace_id == workspace_id)
        ).scalar()
        return int(value or 0)

    # -- the delivery worker's side --------------------------------------------------------

    def any_enabled(self) -> bool:
        t = tables.subscriptions
        return (
            self._c.execute(select(t.c.id).where(t.c.enabled.is_(True)).limit(1)).first()
            is not None
        )

    def with_work(self, now: datetime, limit: int) -> list[str]:
        """Ids of enabled subscriptions with a free lease and something to do: events after
        their cursor, or an oldest pending delivery that is due."""
        t = tables.subscriptions
        d = tables.subscription_deliveries
        counters = tables.workspace_event_counters
        # Only the oldest pending delivery can go next (in order per subscription): a newer
        # one due behind it in backoff is not work, or the subscription would be claimed and
        # given back without progress for ever, ahead of every other one.
        head_of_line = (
            select(d.c.next_attempt_at)
            .where(
                d.c.subscription_id == t.c.id,
                d.c.status == DeliveryStatus.PENDING.value,
            )
            .order_by(d.c.id)
            .limit(1)
            .correlate(t)
            .scalar_subquery()
        )
        due = head_of_line <= now
        stmt = (
            select(t.c.id)
            .outerjoin(counters, counters.c.workspace_id == t.c.workspace_id)
            .where(
                t.c.enabled.is_(True),
                or_(t.c.lease_until.is_(None), t.c.lease_until < now),
                or_(func.coalesce(counters.c.last_seq, 0) > t.c.cursor, due),
            )
            .order_by(t.c.lease_until.is_(None).desc(), t.c.lease_until, t.c.id)
            .limit(limit)
        )
        return [str(row.id) for row in self._c.execute(stmt).all()]

    def claim(self, subscription_id: str, worker: str, now: datetime, until: datetime) -> bool:
        """Take (or renew, for its holder) the subscription's lease; False: another holds it."""
        t = tables.subscriptions
        result = self._c.execute(
            update(t)
            .where(
                t.c.id == subscription_id,
                or_(
                    t.c.lease_until.is_(None),
                    t.c.lease_until < now,
                    t.c.lease_owner == worker,
                ),
            )
            .values(lease_owner=worker, lease_until=until)
        )
        return bool(result.rowcount == 1)

    def release(self, subscription_id: str, worker: str) -> None:
        t = tables.subscriptions
        self._c.execute(
            update(t)
            .where(t.c.id == subscription_id, t.c.lease_owner == worker)
            .values(lease_owner=None, lease_until=None)
        )

    def get_any(self, subscription_id: str) -> Subscription | None:
        t = tables.subscriptions
        row = self._c.execute(select(t).where(t.c.id == subscription_id)).first()
        return None if row is None else _subscription(row)

    def events_after(
        self, workspace_id: str, after: int, limit: int
    ) -> list[tuple[int, str, dict[str, Any], datetime]]:
        e = tables.workspace_events
        rows = self._c.execute(
            select(e.c.seq, e.c.type, e.c.data, e.c.created_at)
            .where(e.c.workspace_id == workspace_id, e.c.seq > after)
            .order_by(e.c.seq)
            .limit(limit)
        ).all()
        return [(int(r.seq), str(r.type), dict(r.data), utc(r.created_at)) for r in rows]

    def move_cursor(self, subscription_id: str, cursor: int) -> None:
        t = tables.subscriptions
        self._c.execute(update(t).where(t.c.id == subscription_id).values(cursor=cursor))

    # -- deliveries ------------------------------------------------------------------------

    def add_delivery(self, delivery: Delivery) -> None:
        self._c.execute(insert(tables.subscription_deliveries).values(**_delivery_row(delivery)))

    def save_delivery(self, delivery: Delivery) -> None:
        d = tables.subscription_deliveries
        values = _delivery_row(delivery)
        del values["id"]
        self._c.execute(update(d).where(d.c.id == delivery.id).values(**values))

    def next_pending(self, subscription_id: str) -> Delivery | None:
        """The oldest pending delivery (deliveries go out in order, one at a time)."""
        d = tables.subscription_deliveries
        row = self._c.execute(
            select(d)
            .where(
                d.c.subscription_id == subscription_id,
                d.c.status == DeliveryStatus.PENDING.value,
            )
            .order_by(d.c.id)
            .limit(1)
        ).first()
        return None if row is None else _delivery(row)

    def get_delivery(self, subscription_id: str, delivery_id: str) -> Delivery | None:
        d = tables.subscription_deliveries
        row = self._c.execute(
            select(d).where(d.c.subscription_id == subscription_id, d.c.id == delivery_id)
        ).first()
        return None if row is None else _delivery(row)

    def deliveries(self, subscription_id: str, before: str | None, limit: int) -> list[Delivery]:
        """Newest first; up to ``limit + 1`` rows before ``before``."""
        d = tables.subscription_deliveries
        stmt = select(d).where(d.c.subscription_id == subscription_id)
        if before is not None:
            stmt = stmt.where(d.c.id < before)
        rows = self._c.execute(stmt.order_by(d.c.id.desc()).limit(limit + 1)).all()
        return [_delivery(row) for row in rows]


class _Audit(Protocol):
    def append(
        self,
        actor: Actor,
        action: str,
        subject_type: str,
        subject_id: str,
        data: dict[str, Any],
        now: datetime,
    ) -> None: ...


class SubscriptionsTx(UnitOfWork, Protocol):
    """What the subscription use cases and the delivery worker need of a unit of work."""

    subscriptions: SubscriptionRepository

    @property
    def audit(self) -> _Audit: ...


def _row(s: Subscription) -> dict[str, Any]:
    return {
        "id": s.id,
        "workspace_id": s.workspace_id,
        "url": s.url,
        "event_types": list(s.event_types),
        "enabled": s.enabled,
        "secret_ciphertext": s.secret_ciphertext,
        "previous_secret_ciphertext": s.previous_secret_ciphertext,
        "previous_secret_expires_at": s.previous_secret_expires_at,
        "cursor": s.cursor,
        "created_by": s.created_by,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        workspace_id=row.workspace_id,
        url=row.url,
        event_types=tuple(row.event_types or ()),
        enabled=bool(row.enabled),
        secret_ciphertext=row.secret_ciphertext,
        cursor=int(row.cursor),
        created_by=row.created_by,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        previous_secret_ciphertext=row.previous_secret_ciphertext,
        previous_secret_expires_at=(
            None if row.previous_secret_expires_at is None else utc(row.previous_secret_expires_at)
        ),
    )


def _delivery_row(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "subscription_id": d.subscription_id,
        "workspace_id": d.workspace_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "body": d.body,
        "status": d.status.value,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at,
        "response_code": d.response_code,
        "latency_ms": d.latency_ms,
        "error": d.error,
        "created_at": d.created_at,
        "delivered_at": d.delivered_at,
    }


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        subscription_id=row.subscription_id,
        workspace_id=row.workspace_id,
        event_id=row.event_id,
        event_type=row.event_type,
        body=row.body,
        status=DeliveryStatus(row.status),
        attempts=int(row.attempts),
        next_attempt_at=None if row.next_attempt_at is None else utc(row.next_attempt_at),
        response_code=row.response_code,
        latency_ms=row.latency_ms,
        error=row.error,
        created_at=utc(row.created_at),
        delivered_at=None if row.delivered_at is None else utc(row.delivered_at),
    )
