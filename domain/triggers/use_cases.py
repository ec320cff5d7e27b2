"""Use cases of triggers: manage them (author), read them and their invocation log (viewer).

Role checked first, one unit of work per use case. Firing (schedule slots, webhook deliveries)
is ``firing.py``'s.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from domain.kernel.actor import Actor, Role
from domain.kernel.clock import Clock
from domain.kernel.errors import NotFound, ReferencedResourceNotFound, RuleViolation
from domain.kernel.ids import new_id
from domain.kernel.paging import Page, PageRequest, page_of
from domain.kernel.ports import SecretBox
from domain.kernel.preconditions import Precondition, check
from domain.kernel.unit_of_work import Store
from domain.runs import check_input
from domain.triggers.errors import MemberNotPublished, NotAWebhook
from domain.triggers.model import (
    CreatedTrigger,
    Invocation,
    RotatedSecret,
    ScheduleView,
    Trigger,
    TriggerChanges,
    TriggerKind,
)
from domain.triggers.repository import TriggersTx
from domain.triggers.schedule import DEFAULT_TIMEZONE, next_slot, normalise_cron, zone
from domain.triggers.webhook_signature import new_secret

#: How long a webhook's previous secret keeps verifying after a rotation, unless told.
DEFAULT_GRACE_SECONDS = 24 * 3600


class Triggers:
    """Schedule and webhook triggers of the actor's workspace, and their invocation logs."""

    def __init__(self, store: Store[TriggersTx], clock: Clock, secret_box: SecretBox) -> None:
        self._store = store
        self._clock = clock
        self._secret_box = secret_box

    def create_trigger(
        self,
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
        now = self._clock.now()
        secret = None
        ciphertext = None
        if trigger_kind is TriggerKind.WEBHOOK:
            secret = new_secret()
            ciphertext = self._secret_box.seal(secret)
        with self._store(write=True) as tx:
            member = tx.members.get_member(actor.workspace_id, member_id)
            if member is None:
                raise ReferencedResourceNotFound("member", member_id, "/member_id")
            if member.active_version_number is None:
                raise MemberNotPublished(member_id)
            if run_input is not None:
                version = tx.members.get_version(
                    actor.workspace_id, member_id, member.active_version_number
                )
                assert version is not None and version.program is not None
                check_input(version.program, run_input)
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
            tx.audit.append(
                actor, "trigger.created", "trigger", trigger.id, {"kind": kind, "name": name}, now
            )
            tx.commit()
        return CreatedTrigger(trigger, secret)

    def check_mail_trigger(self, actor: Actor, member_id: str) -> None:
        """Gate for the deferred mail triggers: the role and the member must check out.

        :raises PermissionDenied: the actor is below author.
        :raises ReferencedResourceNotFound: no such member.
        """
        actor.require(Role.AUTHOR)
        with self._store() as tx:
            if tx.members.get_member(actor.workspace_id, member_id) is None:
                raise ReferencedResourceNotFound("member", member_id, "/member_id")

    def get_trigger(self, actor: Actor, trigger_id: str) -> Trigger:
        """:raises NotFound: no such (live) trigger in the actor's workspace."""
        actor.require(Role.VIEWER)
        with self._store() as tx:
            return _trigger_or_404(tx, actor, trigger_id)

    def list_triggers(
        self, actor: Actor, page: PageRequest, kind: str | None = None
    ) -> Page[Trigger]:
        """List live triggers, oldest first."""
        actor.require(Role.VIEWER)
        with self._store() as tx:
            rows = tx.triggers.list_live(actor.workspace_id, page.cursor, page.limit, kind)
            total = tx.triggers.count_live(actor.workspace_id, kind) if page.include_total else None
        return page_of(rows, page, lambda row: row.id, total)

    def enable_trigger(self, actor: Actor, trigger_id: str) -> Trigger:
        """Enable a trigger (idempotent). Slots from before it are never fired.

        :raises PermissionDenied: the actor is below author.
        :raises NotFound: no such trigger.
        """
        return self._set_enabled(actor, trigger_id, True)

    def disable_trigger(self, actor: Actor, trigger_id: str) -> Trigger:
        """Disable a trigger (idempotent).

        :raises PermissionDenied: the actor is below author.
        :raises NotFound: no such trigger.
        """
        return self._set_enabled(actor, trigger_id, False)

    def _set_enabled(self, actor: Actor, trigger_id: str, enabled: bool) -> Trigger:
        actor.require(Role.AUTHOR)
        now = self._clock.now()
        with self._store(write=True) as tx:
            trigger = _trigger_or_404(tx, actor, trigger_id)
            if trigger.enabled is enabled:
                return trigger
            changed = trigger.with_enabled(enabled, now)
            tx.triggers.save(changed)
            action = "trigger.enabled" if enabled else "trigger.disabled"
            tx.audit.append(actor, action, "trigger", trigger_id, {}, now)
            tx.commit()
        return changed

    def update_trigger(
        self,
        actor: Actor,
        trigger_id: str,
        changes: TriggerChanges,
        *,
        if_match: Precondition[Trigger] | None = None,
    ) -> Trigger:
        """Edit a trigger's name, description, and a schedule's cron, time zone and input (its
        kind and member never change). A new cron or time zone takes effect from the next
        slot: slots it missed are never back-filled.

        :raises PermissionDenied: the actor is below author.
        :raises InvalidField: a garbage cron or time zone.
        :raises RuleViolation: a schedule field (cron, time zone, input) for a webhook.
        :raises NotFound: no such (live) trigger.
        :raises PreconditionFailed: the trigger is not in the state ``if_match`` expects.
        :raises InputSchemaMismatch: the new input breaks the member's input schema.
        """
        actor.require(Role.AUTHOR)
        if changes.cron is not None:
            changes = replace(changes, cron=normalise_cron(changes.cron))
        if changes.timezone is not None:
            zone(changes.timezone)
        now = self._clock.now()
        with self._store(write=True) as tx:
            current = _trigger_or_404(tx, actor, trigger_id)
            check(if_match, current)
            if current.kind is not TriggerKind.SCHEDULE:
                for name in ("cron", "timezone", "input"):
                    if getattr(changes, name) is not None:
                        raise RuleViolation(
                            "schedule-only",
                            f"/{name}: only schedule triggers have a {name}; this is a webhook.",
                            f"/{name}",
                        )
            if changes.input is not None:
                _check_schedule_input(tx, current, changes.input)
            trigger = current.edited(now, changes)
            tx.triggers.save(trigger)
            fields = [
                name
                for name in ("name", "description", "cron", "timezone", "input")
                if getattr(changes, name) is not None
            ]
            tx.audit.append(
                actor, "trigger.updated", "trigger", trigger_id, {"fields": fields}, now
            )
            tx.commit()
        return trigger

    def rotate_trigger_secret(
        self, actor: Actor, trigger_id: str, grace_seconds: int = DEFAULT_GRACE_SECONDS
    ) -> RotatedSecret:
        """Give a webhook trigger a new secret, returned this once. The old one keeps
        verifying deliveries for ``grace_seconds`` (0: it stops at once), so a sender can
        switch without losing deliveries; a secret replaced earlier stops at once.

        :raises PermissionDenied: the actor is below author.
        :raises NotFound: no such (live) trigger.
        :raises NotAWebhook: the trigger is a schedule.
        """
        actor.require(Role.AUTHOR)
        now = self._clock.now()
        secret = new_secret()
        ciphertext = self._secret_box.seal(secret)
        expires = now + timedelta(seconds=grace_seconds) if grace_seconds > 0 else None
        with self._store(write=True) as tx:
            current = _trigger_or_404(tx, actor, trigger_id)
            if current.kind is not TriggerKind.WEBHOOK:
                raise NotAWebhook(trigger_id)
            trigger = current.with_rotated_secret(ciphertext, expires, now)
            tx.triggers.save(trigger)
            tx.audit.append(
                actor,
                "trigger.secret_rotated",
                "trigger",
                trigger_id,
                {"grace_seconds": grace_seconds},
                now,
            )
            tx.commit()
        return RotatedSecret(trigger, secret, expires)

    def delete_trigger(self, actor: Actor, trigger_id: str) -> None:
        """Delete a trigger: it never fires again and reads answer NotFound; its invocation
        log and the runs it started are kept.

        :raises PermissionDenied: the actor is below author.
        :raises NotFound: no such trigger.
        """
        actor.require(Role.AUTHOR)
        now = self._clock.now()
        with self._store(write=True) as tx:
            trigger = _trigger_or_404(tx, actor, trigger_id)
            tx.triggers.save(trigger.deleted(now))
            tx.audit.append(actor, "trigger.deleted", "trigger", trigger_id, {}, now)
            tx.commit()

    def list_trigger_invocations(
        self, actor: Actor, trigger_id: str, page: PageRequest
    ) -> Page[Invocation]:
        """The trigger's invocation log, newest first.

        :raises NotFound: no such trigger.
        """
        actor.require(Role.VIEWER)
        with self._store() as tx:
            _trigger_or_404(tx, actor, trigger_id)
            rows = tx.triggers.list_invocations(
                actor.workspace_id, trigger_id, page.cursor, page.limit
            )
            total = (
                tx.triggers.count_invocations(actor.workspace_id, trigger_id)
                if page.include_total
                else None
            )
        return page_of(rows, page, lambda row: row.id, total)

    def list_schedules(self, actor: Actor, page: PageRequest) -> Page[ScheduleView]:
        """Schedule triggers with their next run time (None when disabled), oldest first."""
        actor.require(Role.VIEWER)
        now = self._clock.now()
        with self._store() as tx:
            rows = tx.triggers.list_live(
                actor.workspace_id, page.cursor, page.limit, TriggerKind.SCHEDULE.value
            )
            last = tx.triggers.last_slots([t.id for t in rows])
            total = (
                tx.triggers.count_live(actor.workspace_id, TriggerKind.SCHEDULE.value)
                if page.include_total
                else None
            )
        triggers = page_of(rows, page, lambda row: row.id, total)
        return Page(
            [schedule_view(t, now, last.get(t.id)) for t in triggers.items],
            triggers.next_cursor,
            total,
        )


def schedule_view(trigger: Trigger, now: datetime, last_slot: datetime | None) -> ScheduleView:
    upcoming = None
    if trigger.enabled and trigger.cron and trigger.timezone:
        upcoming = next_slot(trigger.cron, trigger.timezone, max(now, trigger.active_since))
    return ScheduleView(trigger, upcoming, last_slot)


def _check_schedule_input(tx: TriggersTx, trigger: Trigger, run_input: dict[str, Any]) -> None:
    member = tx.members.get_member(trigger.workspace_id, trigger.member_id)
    if member is None or member.active_version_number is None:
        return  # nothing to check against; firing will log the slot as rejected
    version = tx.members.get_version(
        trigger.workspace_id, trigger.member_id, member.active_version_number
    )
    if version is not None and version.program is not None:
        check_input(version.program, run_input)


def _trigger_or_404(tx: TriggersTx, actor: Actor, trigger_id: str) -> Trigger:
    trigger = tx.triggers.get(actor.workspace_id, trigger_id)
    if trigger is None:
        raise NotFound("trigger", trigger_id)
    return trigger
