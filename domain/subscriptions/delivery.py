"""The delivery worker: turns the workspace event log into signed POSTs, per subscription.

One step (``deliver_next``) claims one subscription with work under a lease, copies the
events after its cursor that it asked for into pending deliveries (advancing the cursor in the
same transaction), then sends its pending deliveries oldest first, one at a time: a delivery
that fails retryably stops the subscription until its next attempt (in order per
subscription). The POST is made outside any transaction; its outcome is stored afterwards, so a
worker killed between the two sends the delivery again (at least once).
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from domain.kernel.actor import Actor
from domain.kernel.clock import Clock
from domain.kernel.errors import RuleViolation
from domain.kernel.ports import SecretBox, SecretUnreadable
from domain.kernel.signals import Signal
from domain.kernel.unit_of_work import Store
from domain.subscriptions.errors import check_target_url
from domain.subscriptions.model import (
    Delivery,
    DeliveryStatus,
    Subscription,
    backoff_seconds,
    retryable,
)
from domain.subscriptions.ports import DeliveryError, DeliveryPort
from domain.subscriptions.repository import SubscriptionsTx
from domain.subscriptions.use_cases import SubscriptionSettings, event_body, pending
from domain.triggers import sign

#: Events copied into deliveries per transaction.
_FAN_OUT_BATCH = 200
#: Deliveries sent per claim, before the lease is given back for fairness.
_SEND_BATCH = 50
#: The error of an attempt whose signing secret the configured keys cannot open.
_UNSIGNABLE = "the signing secret cannot be opened with the configured keys (TRIGGER_SECRET_KEY)"


def subscribed_type(kind: str, data: dict[str, Any]) -> str:
    """The type a subscription names for a workspace event: a finished ``run.changed`` is
    ``run.succeeded``, ``run.failed`` or ``run.cancelled``; an ``approval.decided`` whose status
    is ``expired`` is ``approval.expired``."""
    if kind == "run.changed":
        return f"run.{data.get('status')}"
    if kind == "approval.decided" and data.get("status") == "expired":
        return "approval.expired"
    return kind


class SubscriptionDeliverer:
    """Delivers for one worker (thread or process), named ``worker_id`` in leases."""

    def __init__(
        self,
        store: Store[SubscriptionsTx],
        clock: Clock,
        secret_box: SecretBox,
        client: DeliveryPort,
        settings: SubscriptionSettings,
        worker_id: str,
    ) -> None:
        self._store = store
        self._clock = clock
        self._secret_box = secret_box
        self._client = client
        self._settings = settings
        self._worker = worker_id
        self._jitter = random.Random()

    def deliver_next(self) -> bool:
        """Serve one subscription with work; False when none had any (or all were leased)."""
        now = self._clock.now()
        with self._store() as tx:
            candidates = tx.subscriptions.with_work(now, 10)
        for subscription_id in candidates:
            if self._claim(subscription_id):
                try:
                    self._serve(subscription_id)
                finally:
                    with self._store(write=True) as tx:
                        tx.subscriptions.release(subscription_id, self._worker)
                        tx.commit()
                return True
        return False

    def anyone_subscribed(self) -> bool:
        """Whether any subscription, of any workspace, is enabled."""
        with self._store() as tx:
            return tx.subscriptions.any_enabled()

    def _claim(self, subscription_id: str) -> bool:
        now = self._clock.now()
        # A lease outlives the POST it covers (renewed before each): no second sender while a
        # slow target is still answering.
        seconds = max(self._settings.lease_seconds, 2 * self._settings.timeout_seconds)
        until = now + timedelta(seconds=seconds)
        with self._store(write=True) as tx:
            claimed = tx.subscriptions.claim(subscription_id, self._worker, now, until)
            tx.commit()
        return claimed

    def _serve(self, subscription_id: str) -> None:
        subscription = self._fan_out(subscription_id)
        if subscription is None or not subscription.enabled:
            return
        secret: str | None
        try:
            secret = self._secret_box.open(subscription.secret_ciphertext)
        except SecretUnreadable:
            # The keys were changed without the old one: nothing can be signed. Each due
            # delivery then counts a failed attempt, retried (the key may come back) and, like
            # a target that never answers, disabled after the window: visible in the
            # deliveries, and no subscription stays due for ever ahead of the others.
            secret = None
        for _ in range(_SEND_BATCH):
            with self._store() as tx:
                delivery = tx.subscriptions.next_pending(subscription.id)
            now = self._clock.now()
            if delivery is None or (delivery.next_attempt_at or now) > now:
                return
            if not self._claim(subscription.id):  # renew; lost it: another worker took over
                return
            if not self._send(subscription, secret, delivery):
                return

    def _fan_out(self, subscription_id: str) -> Subscription | None:
        """Copy the wanted events after the cursor into pending deliveries."""
        while True:
            now = self._clock.now()
            with self._store(write=True) as tx:
                subscription = tx.subscriptions.get_any(subscription_id)
                if subscription is None or not subscription.enabled:
                    return subscription
                events = tx.subscriptions.events_after(
                    subscription.workspace_id, subscription.cursor, _FAN_OUT_BATCH
                )
                if not events:
                    # Events up to the head were committed before the head was read: if the
                    # cursor is behind it and none of them shows after that read, the
                    # retention pruned them, and they are skipped. Looked at the other way
                    # round (the head read after an empty look), on PostgreSQL each statement
                    # reads its own snapshot, and an event committed between the two reads
                    # was skipped: its deliveries lost (`make bench`, two delivery processes).
                    head = tx.subscriptions.head(subscription.workspace_id)
                    if head <= subscription.cursor:
                        return subscription
                    if tx.subscriptions.events_after(
                        subscription.workspace_id, subscription.cursor, 1
                    ):
                        continue  # committed meanwhile: copy it now
                    tx.subscriptions.move_cursor(subscription_id, head)
                    tx.commit()
                    return subscription
                wanted = set(subscription.event_types)
                for seq, kind, data, at in events:
                    event_type = subscribed_type(kind, data)
                    if event_type in wanted:
                        body = event_body(str(seq), event_type, at, data)
                        tx.subscriptions.add_delivery(
                            pending(subscription, str(seq), event_type, body, now)
                        )
                tx.subscriptions.move_cursor(subscription_id, events[-1][0])
                tx.commit()
            if len(events) < _FAN_OUT_BATCH:
                return replace(subscription, cursor=events[-1][0])

    def _send(self, subscription: Subscription, secret: str | None, delivery: Delivery) -> bool:
        """POST one delivery signed with ``secret`` (None: unreadable, an attempt that fails
        without a POST) and store its outcome; True when the next one may follow."""
        if secret is None:
            return self._settle(subscription, delivery, None, None, _UNSIGNABLE, 0)
        body = delivery.body.encode("utf-8")
        timestamp = str(int(self._clock.now().timestamp()))
        signature = sign(secret, timestamp, body)
        previous = subscription.previous_secret_live(self._clock.now())
        if previous is not None:  # during a rotation's grace: the replaced secret's too
            try:
                signature += "," + sign(self._secret_box.open(previous), timestamp, body)
            except SecretUnreadable:
                pass
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "ScaiCrew-Subscriptions/1",
            "X-ScaiCrew-Event-Id": delivery.event_id,
            "X-ScaiCrew-Event-Type": delivery.event_type,
            "X-ScaiCrew-Delivery-Id": delivery.id,
            "X-ScaiCrew-Timestamp": timestamp,
            "X-ScaiCrew-Signature": signature,
        }
        started = time.monotonic()
        code: int | None = None
        retry_after: float | None = None
        error: str | None = None
        try:
            check_target_url(subscription.url, self._settings.allowed_hosts)
            response = self._client.post(
                subscription.url, headers, body, self._settings.timeout_seconds
            )
            code, retry_after = response.status, response.retry_after_seconds
        except DeliveryError as exc:
            error = str(exc)[:500] or "no answer"
        except RuleViolation as exc:  # a target no longer allowed (the settings changed)
            error = exc.message[:500]
        latency = int((time.monotonic() - started) * 1000)
        return self._settle(subscription, delivery, code, retry_after, error, latency)

    def _settle(
        self,
        subscription: Subscription,
        delivery: Delivery,
        code: int | None,
        retry_after: float | None,
        error: str | None,
        latency: int,
    ) -> bool:
        """Store one attempt's outcome (a retry after backoff, success, failure, or the
        subscription disabled after the window); True when the next delivery may follow."""
        now = self._clock.now()
        attempts = delivery.attempts + 1
        outcome = replace(
            delivery, attempts=attempts, response_code=code, latency_ms=latency, error=error
        )
        succeeded = code is not None and 200 <= code < 300
        again = not succeeded and (code is None or retryable(code))
        window = timedelta(seconds=self._settings.retry_window_seconds)
        exhausted = again and now - delivery.created_at >= window
        if succeeded:
            outcome = replace(
                outcome, status=DeliveryStatus.SUCCEEDED, next_attempt_at=None, delivered_at=now
            )
        elif again and not exhausted:
            wait = backoff_seconds(
                attempts, self._settings.retry_base_seconds, self._jitter, retry_after
            )
            outcome = replace(outcome, next_attempt_at=now + timedelta(seconds=wait))
        else:  # another answer (a 4xx but 429, a redirect), or retried for the whole window
            outcome = replace(outcome, status=DeliveryStatus.FAILED, next_attempt_at=None)
        with self._store(write=True) as tx:
            if tx.subscriptions.get_delivery(subscription.id, delivery.id) is not None:
                tx.subscriptions.save_delivery(outcome)
                if exhausted:
                    self._disable(tx, subscription.id, delivery, now)
            tx.commit()
        return outcome.status is not DeliveryStatus.PENDING and not exhausted

    def _disable(
        self, tx: SubscriptionsTx, subscription_id: str, delivery: Delivery, now: datetime
    ) -> None:
        """Every attempt of ``delivery`` failed for the whole retry window: disable the
        subscription, with an audit entry and a ``subscription.disabled`` event."""
        current = tx.subscriptions.get_any(subscription_id)
        if current is None or not current.enabled:
            return
        tx.subscriptions.save(replace(current, enabled=False, updated_at=now))
        reason = f"delivery {delivery.id} failed every attempt for the retry window"
        data = {"reason": reason, "delivery_id": delivery.id}
        system = Actor.system(current.workspace_id, "subscription-deliveries")
        tx.audit.append(system, "subscription.disabled", "subscription", current.id, data, now)
        tx.record(
            Signal(
                current.workspace_id,
                "subscription.disabled",
                {"subscription_id": current.id, "url": current.url, "reason": reason},
            )
        )
