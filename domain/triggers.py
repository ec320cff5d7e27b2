"""Use cases of triggers: manage them (author), read them and their invocation log (viewer).

Same rules as ``domain.services``: role checked first, one unit of work per use case. Firing
(schedule slots, webhook deliveries) lives in ``domain.trigger_firing``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from domain.errors import MemberNotPublished, NotFound, ReferencedResourceNotFound
from domain.ids import new_id
from domain.model import Actor, Page, PageRequest, Role, page_of
from domain.run_services import _check_input
from domain.runtime import Runtime
from domain.schedule import DEFAULT_TIMEZONE, next_slot, normalise_cron, zone
from domain.trigger_model import (
    CreatedTrigger,
    Invocation,
    ScheduleView,
    Trigger,
    TriggerKind,
)
from domain.webhook_signature import new_secret


def _now() -> datetime:
    return datetime.now(UTC)


def create_trigger(
    rt: Runtime,
    actor: Actor,
    *,
    kind: str,
    member_id: str,
    name: str,
    description: str = "",
    enabled: bool = True,
    cron: str | None = None,
    timezone: str | None = None,
    run_input: dict[str, Any] | None = None,
) -> CreatedTrigger:
    """Create a schedule or webhook trigger of a published member.

    A webhook's secret is generated here, stored encrypted and returned this once.

    :raises PermissionDenied: the actor is below author.
    :raises InvalidField: a garbage cron expression or time zone.
    :raises ReferencedResourceNotFound: no such member in the workspace.
    :raises MemberNotPublished: the member has no published version.
    :raises InputSchemaMismatch: a schedule's input breaks the member's input schema.
    """
    actor.require(Role.AUTHOR)
    trigger_kind = TriggerKind(kind)
    assert trigger_kind is not TriggerKind.MAIL, "mail triggers are deferred"
    if trigger_kind is TriggerKind.SCHEDULE:
        assert cron is not None
        cron = normalise_cron(cron)
        timezone = timezone or DEFAULT_TIMEZONE
        zone(timezone)
        run_input = run_input or {}
    else:
        cron, timezone, run_input = None, None, None
    now = _now()
    secret = None
    ciphertext = None
    if trigger_kind is TriggerKind.WEBHOOK:
        assert rt.secret_box is not None, "webhook triggers need a secret box"
        secret = new_secret()
        ciphertext = rt.secret_box.seal(secret)
    with rt.uow(write=True) as tx:
        member = tx.repo.get_member(actor.workspace_id, member_id)
        if member is None:
            raise ReferencedResourceNotFound("member", member_id, "/member_id")
        if member.active_version_number is None:
            raise MemberNotPublished(member_id)
        if run_input is not None:
            version = tx.repo.get_version(
                actor.workspace_id, member_id, member.active_version_number
            )
            assert version is not None and version.program is not None
            _check_input(version.program, run_input)
        trigger = Trigger(
            id=new_id("trg"),
            workspace_id=actor.workspace_id,
            member_id=member_id,
            kind=trigger_kind,
            name=name,
            description=description,
            enabled=enabled,
            cron=cron,
            timezone=timezone,
            input=run_input,
            secret_ciphertext=ciphertext,
            active_since=now,
            created_by=actor.subject,
            created_at=now,
            updated_at=now,
            deleted_at=None,
        )
        tx.triggers.add(trigger)
        tx.repo.append_audit(
            actor, "trigger.created", "trigger", trigger.id, {"kind": kind, "name": name}, now
        )
        tx.commit()
    return CreatedTrigger(trigger, secret)


def check_mail_trigger(rt: Runtime, actor: Actor, member_id: str) -> None:
    """Gate for the deferred mail triggers: the role and the member must check out.

    :raises PermissionDenied: the actor is below author.
    :raises ReferencedResourceNotFound: no such member.
    """
    actor.require(Role.AUTHOR)
    with rt.uow() as tx:
        if tx.repo.get_member(actor.workspace_id, member_id) is None:
            raise ReferencedResourceNotFound("member", member_id, "/member_id")


def get_trigger(rt: Runtime, actor: Actor, trigger_id: str) -> Trigger:
    """:raises NotFound: no such (live) trigger in the actor's workspace."""
    actor.require(Role.VIEWER)
    with rt.uow() as tx:
        trigger = tx.triggers.get(actor.workspace_id, trigger_id)
    if trigger is None:
        raise NotFound("trigger", trigger_id)
    return trigger


def list_triggers(
    rt: Runtime, actor: Actor, page: PageRequest, kind: str | None = None
) -> Page[Trigger]:
    """List live triggers, oldest first."""
    actor.require(Role.VIEWER)
    with rt.uow() as tx:
        rows = tx.triggers.list_live(actor.workspace_id, page.cursor, page.limit, kind)
    return page_of(rows, page, lambda row: row.id)


def set_enabled(rt: Runtime, actor: Actor, trigger_id: str, enabled: bool) -> Trigger:
    """Enable or disable a trigger (idempotent).

    Re-enabling starts the schedule afresh: slots from before it are never fired.

    :raises PermissionDenied: the actor is below author.
    :raises NotFound: no such trigger.
    """
    actor.require(Role.AUTHOR)
    now = _now()
    with rt.uow(write=True) as tx:
        trigger = tx.triggers.get(actor.workspace_id, trigger_id)
        if trigger is None:
            raise NotFound("trigger", trigger_id)
        if trigger.enabled is enabled:
            return trigger
        values: dict[str, Any] = {"enabled": enabled, "updated_at": now}
        if enabled:
            values["active_since"] = now
        tx.triggers.update(trigger_id, values)
        action = "trigger.enabled" if enabled else "trigger.disabled"
        tx.repo.append_audit(actor, action, "trigger", trigger_id, {}, now)
        tx.commit()
    return replace(
        trigger,
        enabled=enabled,
        updated_at=now,
        active_since=values.get("active_since", trigger.active_since),
    )


def delete_trigger(rt: Runtime, actor: Actor, trigger_id: str) -> None:
    """Delete a trigger: it never fires again and reads answer NotFound; its invocation log
    and the runs it started are kept.

    :raises PermissionDenied: the actor is below author.
    :raises NotFound: no such trigger.
    """
    actor.require(Role.AUTHOR)
    now = _now()
    with rt.uow(write=True) as tx:
        if tx.triggers.get(actor.workspace_id, trigger_id) is None:
            raise NotFound("trigger", trigger_id)
        tx.triggers.update(trigger_id, {"enabled": False, "deleted_at": now, "updated_at": now})
        tx.repo.append_audit(actor, "trigger.deleted", "trigger", trigger_id, {}, now)
        tx.commit()


def list_invocations(
    rt: Runtime, actor: Actor, trigger_id: str, page: PageRequest
) -> Page[Invocation]:
    """The trigger's invocation log, newest first.

    :raises NotFound: no such trigger.
    """
    actor.require(Role.VIEWER)
    with rt.uow() as tx:
        if tx.triggers.get(actor.workspace_id, trigger_id) is None:
            raise NotFound("trigger", trigger_id)
        rows = tx.triggers.list_invocations(actor.workspace_id, trigger_id, page.cursor, page.limit)
    return page_of(rows, page, lambda row: row.id)


def list_schedules(
    rt: Runtime, actor: Actor, page: PageRequest, now: datetime | None = None
) -> Page[ScheduleView]:
    """Schedule triggers with their next run time (None when disabled), oldest first."""
    actor.require(Role.VIEWER)
    now = now or _now()
    with rt.uow() as tx:
        rows = tx.triggers.list_live(
            actor.workspace_id, page.cursor, page.limit, TriggerKind.SCHEDULE.value
        )
        last = tx.triggers.last_slots([t.id for t in rows])
    triggers = page_of(rows, page, lambda row: row.id)
    return Page(
        [schedule_view(t, now, last.get(t.id)) for t in triggers.items], triggers.next_cursor
    )


def schedule_view(trigger: Trigger, now: datetime, last_slot: datetime | None) -> ScheduleView:
    upcoming = None
    if trigger.enabled and trigger.cron and trigger.timezone:
        upcoming = next_slot(trigger.cron, trigger.timezone, max(now, trigger.active_since))
    return ScheduleView(trigger, upcoming, last_slot)
