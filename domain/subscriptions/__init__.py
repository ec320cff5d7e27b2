"""Subscriptions: signed outbound deliveries of workspace events to a target URL (issue 16)."""

from domain.subscriptions.delivery import SubscriptionDeliverer, subscribed_type
from domain.subscriptions.model import (
    EVENT_TYPES,
    Delivery,
    DeliveryResponse,
    DeliveryStatus,
    Subscription,
    backoff_seconds,
    retryable,
)
from domain.subscriptions.ports import DeliveryError, DeliveryPort
from domain.subscriptions.repository import SubscriptionRepository, SubscriptionsTx
from domain.subscriptions.use_cases import Subscriptions, SubscriptionSettings

__all__ = [
    "EVENT_TYPES",
    "Delivery",
    "DeliveryError",
    "DeliveryPort",
    "DeliveryResponse",
    "DeliveryStatus",
    "Subscription",
    "SubscriptionDeliverer",
    "SubscriptionRepository",
    "SubscriptionSettings",
    "Subscriptions",
    "SubscriptionsTx",
    "backoff_seconds",
    "retryable",
    "subscribed_type",
]
