"""Event subscriptions of the workspace (admin) and their deliveries.

The signing secret is in the answer to ``createSubscription`` only.
"""

from __future__ import annotations

from typing import Any

from domain.subscriptions import Delivery, Subscription
from handlers._http import actor, ok, page, page_body, timestamp, use_cases


def _subscription(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": subscription.id,
        "url": subscription.url,
        "event_types": list(subscription.event_types),
        "enabled": subscription.enabled,
        "previous_secret_expires_at": timestamp(subscription.previous_secret_expires_at),
        "created_by": subscription.created_by,
        "created_at": timestamp(subscription.created_at),
        "updated_at": timestamp(subscription.updated_at),
    }


def _delivery(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "subscription_id": delivery.subscription_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "response_code": delivery.response_code,
        "latency_ms": delivery.latency_ms,
        "error": delivery.error,
        "next_attempt_at": timestamp(delivery.next_attempt_at),
        "created_at": timestamp(delivery.created_at),
        "delivered_at": timestamp(delivery.delivered_at),
    }


def create_subscription(token_info: dict[str, Any], body: dict[str, Any]) -> Any:
    subscription, secret = use_cases().subscriptions.create_subscription(
        actor(token_info),
        url=body["url"],
        event_types=body["event_types"],
        enabled=body.get("enabled", True),
    )
    answer = _subscription(subscription) | {"secret": secret}
    return ok(answer, 201, {"Location": f"/v1/subscriptions/{subscription.id}"})


def list_subscriptions(
    token_info: dict[str, Any], limit: int = 50, cursor: str | None = None
) -> Any:
    result = use_cases().subscriptions.list_subscriptions(actor(token_info), page(limit, cursor))
    return ok(page_body(result, _subscription))


def get_subscription(token_info: dict[str, Any], subscription_id: str) -> Any:
    subscription = use_cases().subscriptions.get_subscription(actor(token_info), subscription_id)
    return ok(_subscription(subscription))


def update_subscription(
    token_info: dict[str, Any], subscription_id: str, body: dict[str, Any]
) -> Any:
    subscription = use_cases().subscriptions.update_subscription(
        actor(token_info),
        subscription_id,
        url=body.get("url"),
        event_types=body.get("event_types"),
        enabled=body.get("enabled"),
    )
    return ok(_subscription(subscription))


def rotate_subscription_secret(
    token_info: dict[str, Any], subscription_id: str, body: Any = None
) -> Any:
    # Without a body Connexion passes the schema's default as raw bytes: no options given.
    options = body if isinstance(body, dict) else {}
    grace = {k: v for k, v in options.items() if k == "grace_seconds"}  # else the default
    subscription, secret = use_cases().subscriptions.rotate_subscription_secret(
        actor(token_info), subscription_id, **grace
    )
    return ok(_subscription(subscription) | {"secret": secret})


def delete_subscription(token_info: dict[str, Any], subscription_id: str) -> Any:
    use_cases().subscriptions.delete_subscription(actor(token_info), subscription_id)
    return None, 204


def list_subscription_deliveries(
    token_info: dict[str, Any],
    subscription_id: str,
    limit: int = 50,
    cursor: str | None = None,
) -> Any:
    result = use_cases().subscriptions.list_subscription_deliveries(
        actor(token_info), subscription_id, page(limit, cursor)
    )
    return ok(page_body(result, _delivery))


def redeliver_subscription_delivery(
    token_info: dict[str, Any], subscription_id: str, delivery_id: str
) -> Any:
    delivery = use_cases().subscriptions.redeliver_subscription_delivery(
        actor(token_info), subscription_id, delivery_id
    )
    return ok(_delivery(delivery), 202)


def test_subscription(token_info: dict[str, Any], subscription_id: str) -> Any:
    delivery = use_cases().subscriptions.test_subscription(actor(token_info), subscription_id)
    return ok(_delivery(delivery), 202)
