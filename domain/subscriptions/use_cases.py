"""Use cases of event subscriptions (admin): create, read, update, delete, their deliveries,
redelivery and a signed test ``ping``.

The signing secret is generated here, sealed with the deployment's key material (as webhook
trigger secrets are) and returned once, at creation. Deliveries are made by
``SubscriptionDeliverer`` (``domain.subscriptions.delivery``), never on the HTTP path.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from domain.kernel.actor import Actor, Role
from domain.kernel.clock import Clock
from domain.kernel.errors import NotFound
from domain.kernel.ids import new_id
from domain.kernel.paging import Page, PageRequest, page_of
from domain.kernel.ports import SecretBox
from domain.kernel.unit_of_work import Store
from domain.subscriptions.errors import check_event_types, check_target_url
from domain.subscriptions.model import Delivery, DeliveryStatus, Subscription
from domain.subscriptions.repository import SubscriptionsTx


@dataclass(frozen=True)
class SubscriptionSettings:
    allowed_hosts: tuple[str, ...]
    timeout_seconds: float
    lease_seconds: float
    retry_base_seconds: float
    #: How long a delivery is retried; one failing that long disables its subscription.
    retry_window_seconds: float = 86_400.0


#: How long a replaced signing secret keeps signing deliveries by default (24 hours).
DEFAULT_GRACE_SECONDS = 86_400


def new_signing_secret() -> str:
    """A fresh signing secret (256 random bits), in the shape of webhook trigger secrets."""
    return "whsec_" + secrets.token_urlsafe(32)


def event_body(event_id: str, event_type: str, at: datetime, data: dict[str, Any]) -> str:
    """The JSON body of a delivery: the stream's event id, the type, the time, the data and
    the API paths of the run and approval it names (an approval notice links its decision)."""
    links = {}
    if isinstance(data.get("run_id"), str):
        links["run"] = f"/v1/runs/{data['run_id']}"
    if isinstance(data.get("approval_id"), str):
        links["approval"] = f"/v1/approvals/{data['approval_id']}"
    body = {
        "id": event_id,
        "type": event_type,
        "time": at.isoformat().replace("+00:00", "Z"),
        "data": data,
        "links": links,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def pending(
    subscription: Subscription, event_id: str, event_type: str, body: str, now: datetime
) -> Delivery:
    return Delivery(
        id=new_id("dlv"),
        subscription_id=subscription.id,
        workspace_id=subscription.workspace_id,
        event_id=event_id,
        event_type=event_type,
        body=body,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        response_code=None,
        latency_ms=None,
        error=None,
        created_at=now,
        delivered_at=None,
    )


class Subscriptions:
    """Event subscriptions of the actor's workspace."""

    def __init__(
        self,
        store: Store[SubscriptionsTx],
        clock: Clock,
        secret_box: SecretBox,
        settings: SubscriptionSettings,
    ) -> None:
        self._store = store
        self._clock = clock
        self._secret_box = secret_box
        self.settings = settings

    def create_subscription(
        self, actor: Actor, *, url: str, event_types: list[str], enabled: bool = True
    ) -> tuple[Subscription, str]:
        """Subscribe ``url`` to ``event_types`` from now on; returns it and its signing secret
        (shown this once).

        :raises PermissionDenied: the actor is below admin.
        :raises RuleViolation: the URL is refused (``subscription-url-refused``, ``/url``).
        :raises InvalidField: an event type is unknown.
        """
        actor.require(Role.ADMIN)
        check_target_url(url, self.settings.allowed_hosts)
        check_event_types(event_types)
        secret = new_signing_secret()
        sealed = self._secret_box.seal(secret)
        now = self._clock.now()
        with self._store(write=True) as tx:
            subscription = Subscription(
                id=new_id("sub"),
                workspace_id=actor.workspace_id,
                url=url,
                event_types=tuple(dict.fromkeys(event_types)),
                enabled=enabled,
                secret_ciphertext=sealed,
                cursor=tx.subscriptions.head(actor.workspace_id),
                created_by=actor.subject,
                created_at=now,
                updated_at=now,
            )
            tx.subscriptions.add(subscription)
            data = {"url": url, "event_types": list(subscription.event_types)}
            tx.audit.append(
                actor, "subscription.created", "subscription", subscription.id, data, now
            )
            tx.commit()
        return subscription, secret

    def list_subscriptions(self, actor: Actor, page: PageRequest) -> Page[Subscription]:
        """Subscriptions of the workspace, oldest first."""
        actor.require(Role.ADMIN)
        with self._store() as tx:
            rows = tx.subscriptions.page(actor.workspace_id, page.cursor, page.limit)
        return page_of(rows, page, lambda row: row.id)

    def get_subscription(self, actor: Actor, subscription_id: str) -> Subscription:
        """:raises NotFound: no such subscription in the actor's workspace."""
        actor.require(Role.ADMIN)
        with self._store() as tx:
            return _subscription_or_404(tx, actor, subscription_id)

    def update_subscription(
        self,
        actor: Actor,
        subscription_id: str,
        *,
        url: str | None = None,
        event_types: list[str] | None = None,
        enabled: bool | None = None,
    ) -> Subscription:
        """Change the target, the event types or the enabled flag (events while disabled are
        skipped, not delivered later).

        :raises NotFound: no such subscription.
        :raises RuleViolation: the URL is refused (``subscription-url-refused``, ``/url``).
        :raises InvalidField: an event type is unknown.
        """
        actor.require(Role.ADMIN)
        if url is not None:
            check_target_url(url, self.settings.allowed_hosts)
        if event_types is not None:
            check_event_types(event_types)
        now = self._clock.now()
        with self._store(write=True) as tx:
            current = _subscription_or_404(tx, actor, subscription_id)
            updated = replace(current, updated_at=now)
            if url is not None:
                updated = replace(updated, url=url)
            if event_types is not None:
                updated = replace(updated, event_types=tuple(dict.fromkeys(event_types)))
            if enabled is not None:
                updated = replace(updated, enabled=enabled)
            tx.subscriptions.save(updated)
            if enabled and not current.enabled:  # re-enabled: from now on, not the backlog
                tx.subscriptions.move_cursor(updated.id, tx.subscriptions.head(actor.workspace_id))
            data: dict[str, Any] = {"url": url, "event_types": event_types, "enabled": enabled}
            data = {k: v for k, v in data.items() if v is not None}
            tx.audit.append(actor, "subscription.updated", "subscription", updated.id, data, now)
            tx.commit()
        return updated

    def rotate_subscription_secret(
        self, actor: Actor, subscription_id: str, grace_seconds: int = DEFAULT_GRACE_SECONDS
    ) -> tuple[Subscription, str]:
        """Give a subscription a new signing secret, returned this once. For ``grace_seconds``
        (0: not at all) deliveries carry a signature with the replaced secret too, so a
        receiver can switch without refusing any; a secret replaced earlier stops at once.

        :raises NotFound: no such subscription.
        """
        actor.require(Role.ADMIN)
        secret = new_signing_secret()
        sealed = self._secret_box.seal(secret)
        now = self._clock.now()
        expires = now + timedelta(seconds=grace_seconds) if grace_seconds > 0 else None
        with self._store(write=True) as tx:
            current = _subscription_or_404(tx, actor, subscription_id)
            rotated = replace(
                current,
                secret_ciphertext=sealed,
                previous_secret_ciphertext=None if expires is None else current.secret_ciphertext,
                previous_secret_expires_at=expires,
                updated_at=now,
            )
            tx.subscriptions.save(rotated)
            data = {"grace_seconds": grace_seconds}
            tx.audit.append(
                actor, "subscription.secret_rotated", "subscription", rotated.id, data, now
            )
            tx.commit()
        return rotated, secret

    def delete_subscription(self, actor: Actor, subscription_id: str) -> None:
        """Forget a subscription and its deliveries; pending ones are not sent.

        :raises NotFound: no such subscription.
        """
        actor.require(Role.ADMIN)
        now = self._clock.now()
        with self._store(write=True) as tx:
            subscription = _subscription_or_404(tx, actor, subscription_id)
            tx.subscriptions.remove(subscription)
            data = {"url": subscription.url}
            tx.audit.append(
                actor, "subscription.deleted", "subscription", subscription.id, data, now
            )
            tx.commit()

    def list_subscription_deliveries(
        self, actor: Actor, subscription_id: str, page: PageRequest
    ) -> Page[Delivery]:
        """The subscription's deliveries, newest first.

        :raises NotFound: no such subscription.
        """
        actor.require(Role.ADMIN)
        with self._store() as tx:
            _subscription_or_404(tx, actor, subscription_id)
            rows = tx.subscriptions.deliveries(subscription_id, page.cursor, page.limit)
        return page_of(rows, page, lambda row: row.id)

    def redeliver_subscription_delivery(
        self, actor: Actor, subscription_id: str, delivery_id: str
    ) -> Delivery:
        """Queue the same event again (same event id and body, signed afresh), after the
        subscription's pending deliveries.

        :raises NotFound: no such subscription or delivery.
        """
        actor.require(Role.ADMIN)
        now = self._clock.now()
        with self._store(write=True) as tx:
            subscription = _subscription_or_404(tx, actor, subscription_id)
            original = tx.subscriptions.get_delivery(subscription_id, delivery_id)
            if original is None:
                raise NotFound("delivery", delivery_id)
            again = pending(
                subscription, original.event_id, original.event_type, original.body, now
            )
            tx.subscriptions.add_delivery(again)
            data = {"delivery_id": delivery_id, "redelivery_id": again.id}
            tx.audit.append(
                actor, "subscription.redelivered", "subscription", subscription_id, data, now
            )
            tx.commit()
        return again

    def test_subscription(self, actor: Actor, subscription_id: str) -> Delivery:
        """Queue a signed ``ping`` (its event id is the delivery's id); a disabled subscription
        sends nothing, this included, until it is enabled again.

        :raises NotFound: no such subscription.
        """
        actor.require(Role.ADMIN)
        now = self._clock.now()
        with self._store(write=True) as tx:
            subscription = _subscription_or_404(tx, actor, subscription_id)
            delivery_id = new_id("dlv")
            body = event_body(delivery_id, "ping", now, {"subscription_id": subscription.id})
            ping = replace(pending(subscription, delivery_id, "ping", body, now), id=delivery_id)
            tx.subscriptions.add_delivery(ping)
            data = {"delivery_id": ping.id}
            tx.audit.append(
                actor, "subscription.tested", "subscription", subscription.id, data, now
            )
            tx.commit()
        return ping


def _subscription_or_404(tx: SubscriptionsTx, actor: Actor, subscription_id: str) -> Subscription:
    subscription = tx.subscriptions.get(actor.workspace_id, subscription_id)
    if subscription is None:
        raise NotFound("subscription", subscription_id)
    return subscription
