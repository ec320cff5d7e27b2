"""Triggers, schedules and invocations to the JSON shapes of openapi.yaml."""

from __future__ import annotations

from typing import Any

from connexion import request

from domain.triggers import Invocation, ScheduleView, Trigger, TriggerKind
from handlers._http import timestamp
from handlers.context import app_context


def ingress_url(trigger_id: str) -> str:
    """The public URL of a webhook trigger: WEBHOOK_BASE_URL, else this request's base URL."""
    base = app_context().settings.webhooks.base_url or str(request.base_url)
    return f"{base.rstrip('/')}/v1/webhooks/{trigger_id}"


def trigger(t: Trigger) -> dict[str, Any]:
    return {
        "id": t.id,
        "kind": t.kind.value,
        "name": t.name,
        "description": t.description,
        "member_id": t.member_id,
        "enabled": t.enabled,
        "cron": t.cron,
        "timezone": t.timezone,
        "input": t.input,
        "ingress_url": ingress_url(t.id) if t.kind is TriggerKind.WEBHOOK else None,
        "previous_secret_expires_at": timestamp(t.previous_secret_expires_at),
        "created_by": t.created_by,
        "created_at": timestamp(t.created_at),
        "updated_at": timestamp(t.updated_at),
    }


def created_trigger(t: Trigger, secret: str | None) -> dict[str, Any]:
    return {**trigger(t), "secret": secret}


def schedule(s: ScheduleView) -> dict[str, Any]:
    t = s.trigger
    return {
        "trigger_id": t.id,
        "name": t.name,
        "member_id": t.member_id,
        "enabled": t.enabled,
        "cron": t.cron,
        "timezone": t.timezone,
        "next_run_at": timestamp(s.next_run_at),
        "last_slot_at": timestamp(s.last_slot),
    }


def invocation(i: Invocation) -> dict[str, Any]:
    return {
        "id": i.id,
        "trigger_id": i.trigger_id,
        "at": timestamp(i.at),
        "source": i.source,
        "outcome": i.outcome.value,
        "reason": i.reason,
        "run_id": i.run_id,
        "slot": timestamp(i.slot),
        "delivery_key": i.delivery_key,
        "secret": i.secret,
    }
