"""Triggers (schedule, webhook; mail is deferred), their invocation log, and schedules."""

from __future__ import annotations

from typing import Any

from domain import triggers
from handlers import trigger_shapes
from handlers._http import actor, ok, page, page_body, runtime
from handlers.problems import ApiError


def create_trigger(token_info: dict[str, Any], body: dict[str, Any]) -> Any:
    if body["kind"] == "mail":
        triggers.check_mail_trigger(runtime(), actor(token_info), body["member_id"])
        raise ApiError(501, "Mail triggers are not implemented yet; use a webhook trigger.")
    created = triggers.create_trigger(
        runtime(),
        actor(token_info),
        kind=body["kind"],
        member_id=body["member_id"],
        name=body["name"],
        description=body.get("description", ""),
        enabled=body.get("enabled", True),
        cron=body.get("cron"),
        timezone=body.get("timezone"),
        run_input=body.get("input"),
    )
    trigger = created.trigger
    return ok(
        trigger_shapes.created_trigger(trigger, created.secret),
        201,
        {"Location": f"/v1/triggers/{trigger.id}"},
    )


def list_triggers(
    token_info: dict[str, Any], limit: int = 50, cursor: str | None = None, kind: str | None = None
) -> Any:
    result = triggers.list_triggers(runtime(), actor(token_info), page(limit, cursor), kind)
    return ok(page_body(result, trigger_shapes.trigger))


def get_trigger(token_info: dict[str, Any], trigger_id: str) -> Any:
    return ok(
        trigger_shapes.trigger(triggers.get_trigger(runtime(), actor(token_info), trigger_id))
    )


def enable_trigger(token_info: dict[str, Any], trigger_id: str) -> Any:
    trigger = triggers.set_enabled(runtime(), actor(token_info), trigger_id, True)
    return ok(trigger_shapes.trigger(trigger))


def disable_trigger(token_info: dict[str, Any], trigger_id: str) -> Any:
    trigger = triggers.set_enabled(runtime(), actor(token_info), trigger_id, False)
    return ok(trigger_shapes.trigger(trigger))


def delete_trigger(token_info: dict[str, Any], trigger_id: str) -> Any:
    triggers.delete_trigger(runtime(), actor(token_info), trigger_id)
    return None, 204


def list_trigger_invocations(
    token_info: dict[str, Any], trigger_id: str, limit: int = 50, cursor: str | None = None
) -> Any:
    result = triggers.list_invocations(
        runtime(), actor(token_info), trigger_id, page(limit, cursor)
    )
    return ok(page_body(result, trigger_shapes.invocation))


def list_schedules(token_info: dict[str, Any], limit: int = 50, cursor: str | None = None) -> Any:
    result = triggers.list_schedules(runtime(), actor(token_info), page(limit, cursor))
    return ok(page_body(result, trigger_shapes.schedule))
