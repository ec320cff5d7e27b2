"""Triggers (schedule, webhook; mail is deferred), their invocation log, and schedules."""

from __future__ import annotations

from typing import Any

from domain.triggers import TriggerChanges
from handlers import trigger_shapes
from handlers._http import actor, ok, page, page_body, use_cases
from handlers.etags import conditional, etag_of, if_match, tagged
from handlers.problems import ApiError


def create_trigger(token_info: dict[str, Any], body: dict[str, Any]) -> Any:
    if body["kind"] == "mail":
        use_cases().triggers.check_mail_trigger(actor(token_info), body["member_id"])
        raise ApiError(501, "Mail triggers are not implemented yet; use a webhook trigger.")
    created = use_cases().triggers.create_trigger(
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
    token_info: dict[str, Any],
    limit: int = 50,
    cursor: str | None = None,
    kind: str | None = None,
    include_total: bool = False,
) -> Any:
    result = use_cases().triggers.list_triggers(
        actor(token_info), page(limit, cursor, include_total), kind
    )
    return ok(page_body(result, trigger_shapes.trigger))


def get_trigger(token_info: dict[str, Any], trigger_id: str) -> Any:
    trigger = use_cases().triggers.get_trigger(actor(token_info), trigger_id)
    return conditional(trigger_shapes.trigger(trigger))


def enable_trigger(token_info: dict[str, Any], trigger_id: str) -> Any:
    trigger = use_cases().triggers.enable_trigger(actor(token_info), trigger_id)
    return ok(trigger_shapes.trigger(trigger))


def disable_trigger(token_info: dict[str, Any], trigger_id: str) -> Any:
    trigger = use_cases().triggers.disable_trigger(actor(token_info), trigger_id)
    return ok(trigger_shapes.trigger(trigger))


def update_trigger(token_info: dict[str, Any], trigger_id: str, body: dict[str, Any]) -> Any:
    trigger = use_cases().triggers.update_trigger(
        actor(token_info),
        trigger_id,
        TriggerChanges(
            name=body.get("name"),
            description=body.get("description"),
            cron=body.get("cron"),
            timezone=body.get("timezone"),
            input=body.get("input"),
        ),
        if_match=if_match(trigger_shapes.trigger),
    )
    return tagged(trigger_shapes.trigger(trigger))


def rotate_trigger_secret(token_info: dict[str, Any], trigger_id: str, body: Any = None) -> Any:
    # Without a body Connexion passes the schema's default as raw bytes: no options given.
    options = body if isinstance(body, dict) else {}
    grace = {k: v for k, v in options.items() if k == "grace_seconds"}  # else the default
    rotated = use_cases().triggers.rotate_trigger_secret(actor(token_info), trigger_id, **grace)
    shape = trigger_shapes.trigger(rotated.trigger)
    return ok({**shape, "secret": rotated.secret}, 200, {"ETag": etag_of(shape)})


def delete_trigger(token_info: dict[str, Any], trigger_id: str) -> Any:
    use_cases().triggers.delete_trigger(actor(token_info), trigger_id)
    return None, 204


def list_trigger_invocations(
    token_info: dict[str, Any],
    trigger_id: str,
    limit: int = 50,
    cursor: str | None = None,
    include_total: bool = False,
) -> Any:
    result = use_cases().triggers.list_trigger_invocations(
        actor(token_info), trigger_id, page(limit, cursor, include_total)
    )
    return ok(page_body(result, trigger_shapes.invocation))


def list_schedules(
    token_info: dict[str, Any],
    limit: int = 50,
    cursor: str | None = None,
    include_total: bool = False,
) -> Any:
    result = use_cases().triggers.list_schedules(
        actor(token_info), page(limit, cursor, include_total)
    )
    return ok(page_body(result, trigger_shapes.schedule))
