"""Triggers: cron schedules and signed webhooks that start a member's runs, and their logs."""

from domain.triggers.errors import MemberNotPublished, NotAWebhook, WebhookRejected
from domain.triggers.firing import Firing, TriggerFiring
from domain.triggers.model import (
    CreatedTrigger,
    Invocation,
    InvocationOutcome,
    RotatedSecret,
    ScheduleView,
    Trigger,
    TriggerChanges,
    TriggerKind,
    WebhookDelivery,
    WebhookResult,
    WebhookSettings,
)
from domain.triggers.repository import TriggerRepository, TriggersTx
from domain.triggers.use_cases import Triggers
from domain.triggers.webhook_signature import sign

__all__ = [
    "CreatedTrigger",
    "Firing",
    "Invocation",
    "InvocationOutcome",
    "MemberNotPublished",
    "NotAWebhook",
    "RotatedSecret",
    "ScheduleView",
    "Trigger",
    "TriggerChanges",
    "TriggerFiring",
    "TriggerKind",
    "TriggerRepository",
    "Triggers",
    "TriggersTx",
    "WebhookDelivery",
    "WebhookRejected",
    "WebhookResult",
    "WebhookSettings",
    "sign",
]
