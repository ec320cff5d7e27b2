"""Firing triggers: the scheduler's tick and webhook ingress.

Both find the trigger across workspaces, then act in the trigger's workspace as a system actor
(runs are ``created_by`` ``trigger:<id>``). Every firing of a known trigger is appended to its
invocation log: accepted (a run started), replayed (a duplicate answered with the original
run) or rejected (with a reason). Rejections are logged in their own commit before the error
is raised, so the log keeps them even though the request fails.

De-duplication is by unique keys claimed in the run's own transaction: a schedule slot
(``schedule_slots``' primary key) or a webhook delivery key (``webhook_deliveries``'), so two
processes can never start two runs for one slot or one delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.engine import append_events, new_run
from domain.errors import (
    IdempotencyKeyReused,
    InputSchemaMismatch,
    NothingToRun,
    WebhookRejected,
)
from domain.model import Member, Run, RunOrigin, RunStatus, Version
from domain.ports import SecretUnreadable
from domain.run_services import _check_input
from domain.runtime import Runtime
from domain.schedule import latest_due_slot
from domain.signals import Signal, run_changed
from domain.trigger_model import (
    InvocationOutcome,
    Trigger,
    TriggerKind,
    WebhookDelivery,
    WebhookResult,
)
from domain.unit_of_work import UnitOfWork
from domain.webhook_signature import body_hash, refusal


@dataclass(frozen=True)
class Firing:
    """One slot the scheduler fired: the run it started, or why it started none."""

    trigger_id: str
    slot: datetime
    run_id: str | None
    reason: str | None = None


class _LostRace(Exception):
    """Another transaction claimed the same delivery key first (PostgreSQL only)."""


def _runnable(
    tx: UnitOfWork, trigger: Trigger, run_input: dict[str, Any]
) -> tuple[Member, Version]:
    """The member and its active version, if ``run_input`` may start it.

    :raises NothingToRun: the member has no published version (any more).
    :raises InputSchemaMismatch: the input breaks the version's input schema.
    """
    member = tx.repo.get_member(trigger.workspace_id, trigger.member_id)
    number = None if member is None else member.active_version_number
    version = (
        None
        if member is None or number is None
        else tx.repo.get_version(trigger.workspace_id, member.id, number)
    )
    if member is None or version is None or version.program is None:
        raise NothingToRun(trigger.member_id, False)
    _check_input(version.program, run_input)
    return member, version


def _queue_run(
    tx: UnitOfWork,
    trigger: Trigger,
    member: Member,
    version: Version,
    run_input: dict[str, Any],
    origin: RunOrigin,
    now: datetime,
) -> Run:
    assert version.program is not None
    run = new_run(
        workspace_id=trigger.workspace_id,
        member_id=member.id,
        crew_id=member.crew_id,
        version_id=version.id,
        version_number=version.number,
        program=version.program,
        run_input=run_input,
        origin=origin,
        dry_run=False,
        created_by=trigger.subject,
        parent_run_id=None,
        depth=0,
        now=now,
    )
    tx.runs.add_run(run)
    queued = {"origin": origin.value, "dry_run": False, "trigger_id": trigger.id}
    seq = append_events(tx, run, [("run.queued", queued)], now)
    tx.runs.update_run(run.id, {"next_seq": seq})
    return run


def _record_fired(tx: UnitOfWork, trigger: Trigger, run: Run, source: str) -> None:
    tx.record(
        Signal(
            trigger.workspace_id,
            "trigger.fired",
            {"trigger_id": trigger.id, "run_id": run.id, "source": source},
        )
    )
    tx.record(run_changed(trigger.workspace_id, run.id, RunStatus.QUEUED.value))


# -- schedules -------------------------------------------------------------------------------


def tick(rt: Runtime, now: datetime) -> list[Firing]:
    """Fire the latest due slot of every enabled schedule trigger, as of ``now``.

    Safe to run in several processes at once: each slot fires at most once.
    """
    with rt.uow() as tx:
        candidates = tx.triggers.due_schedules()
    fired: list[Firing] = []
    for trigger, last_slot in candidates:
        assert trigger.cron is not None and trigger.timezone is not None
        slot = latest_due_slot(trigger.cron, trigger.timezone, now, trigger.active_since)
        if slot is None or (last_slot is not None and slot <= last_slot):
            continue
        firing = fire_slot(rt, trigger.id, slot, now)
        if firing is not None:
            fired.append(firing)
    return fired


def fire_slot(rt: Runtime, trigger_id: str, slot: datetime, now: datetime) -> Firing | None:
    """Start the run of one slot, unless the slot was fired already (then None).

    The slot claim and the run are one transaction: if another scheduler claimed the slot,
    this one's run is rolled back with it. A slot whose member cannot run is claimed too (so
    it is not retried every tick) and logged as rejected.
    """
    with rt.uow(write=True) as tx:
        trigger = tx.triggers.get(None, trigger_id)
        if (
            trigger is None
            or trigger.kind is not TriggerKind.SCHEDULE
            or not trigger.enabled
            or trigger.deleted_at is not None
            or slot < trigger.active_since
        ):
            return None  # changed since the tick read it
        run_input = dict(trigger.input or {})
        try:
            member, version = _runnable(tx, trigger, run_input)
        except (NothingToRun, InputSchemaMismatch) as exc:
            if not tx.triggers.claim_slot(trigger, slot, None, now):
                return None
            reason = exc.slug or "rejected"
            tx.triggers.add_invocation(
                trigger,
                source="schedule",
                outcome=InvocationOutcome.REJECTED,
                reason=reason,
                slot=slot,
                at=now,
            )
            tx.commit()
            return Firing(trigger.id, slot, None, reason)
        run = _queue_run(tx, trigger, member, version, run_input, RunOrigin.SCHEDULE, now)
        if not tx.triggers.claim_slot(trigger, slot, run.id, now):
            return None  # another scheduler fired this slot: roll our run back
        tx.triggers.add_invocation(
            trigger,
            source="schedule",
            outcome=InvocationOutcome.ACCEPTED,
            run_id=run.id,
            slot=slot,
            at=now,
        )
        _record_fired(tx, trigger, run, "schedule")
        tx.commit()
    return Firing(trigger.id, slot, run.id)


# -- webhooks --------------------------------------------------------------------------------


def _delivery_keys(delivery: WebhookDelivery, digest: str) -> tuple[str, str]:
    """(signature key, delivery key): a replayed signature maps to its original run whatever
    Idempotency-Key it is re-sent with (the header is not signed); the delivery key is the
    Idempotency-Key, else the body hash."""
    signature_key = "sig:" + delivery.signature.lower().removeprefix("sha256=")
    if delivery.idempotency_key is not None:
        return signature_key, "key:" + delivery.idempotency_key
    return signature_key, "body:" + digest


def receive_webhook(rt: Runtime, delivery: WebhookDelivery, now: datetime) -> WebhookResult:
    """Verify a delivery and start the trigger's member with its body as input, once.

    A duplicate (same signature, same Idempotency-Key, or without a key the same body)
    within the de-duplication window (``webhook_dedup_seconds``) answers the run of the
    first delivery, with ``replayed`` set; after it, the same body starts a new run.

    :raises WebhookRejected: unknown, deleted or disabled trigger, bad signature or
        timestamp outside the window (one error for all: it reveals nothing).
    :raises IdempotencyKeyReused: the Idempotency-Key came with another body before.
    :raises NothingToRun: the member has no published version any more.
    :raises InputSchemaMismatch: the body breaks the member's input schema.
    """
    box = rt.secret_box
    assert box is not None, "webhook ingress needs a secret box"
    digest = body_hash(delivery.raw_body)
    signature_key, delivery_key = _delivery_keys(delivery, digest)
    try:
        return _deliver(rt, delivery, now, digest, signature_key, delivery_key)
    except _LostRace:
        pass
    # A concurrent identical delivery committed first: answer its run.
    with rt.uow(write=True) as tx:
        trigger = tx.triggers.get(None, delivery.trigger_id)
        found = tx.triggers.find_delivery(delivery.trigger_id, [signature_key, delivery_key])
        assert trigger is not None and found is not None
        _check_key_reuse(found, delivery_key, digest, delivery)
        tx.triggers.add_invocation(
            trigger,
            source="webhook",
            outcome=InvocationOutcome.REPLAYED,
            run_id=found[2],
            delivery_key=found[0],
            at=now,
        )
        tx.commit()
    return WebhookResult(found[2], delivery.trigger_id, True)


def _check_key_reuse(
    found: tuple[str, str, str], delivery_key: str, digest: str, delivery: WebhookDelivery
) -> None:
    if found[0] == delivery_key and delivery_key.startswith("key:") and found[1] != digest:
        assert delivery.idempotency_key is not None
        raise IdempotencyKeyReused(delivery.idempotency_key)


def _refusal(rt: Runtime, trigger: Trigger, delivery: WebhookDelivery, now: datetime) -> str | None:
    assert rt.secret_box is not None and trigger.secret_ciphertext is not None
    try:
        secret = rt.secret_box.open(trigger.secret_ciphertext)
    except SecretUnreadable:
        return "secret-unreadable"
    reason = refusal(secret, delivery.timestamp, delivery.signature, delivery.raw_body, now)
    if reason is not None:
        return reason
    if trigger.deleted_at is not None:
        return "deleted"
    if not trigger.enabled:
        return "disabled"
    return None


def _refusals_flooding(tx: UnitOfWork, trigger: Trigger, now: datetime, per_minute: int) -> bool:
    """Whether the trigger's log already holds ``per_minute`` rejections from the last minute.

    Anyone who knows a trigger id can send forged deliveries; logging each one would let them
    grow the log without bound. Deliveries that pass the signature are always logged.
    """
    since = now - timedelta(minutes=1)
    return tx.triggers.count_rejections(trigger.id, since, per_minute) >= per_minute


def _log_rejection(
    tx: UnitOfWork,
    trigger: Trigger,
    reason: str,
    delivery_key: str,
    now: datetime,
    error: Exception,
) -> Exception:
    """Append the rejection to the log and commit it; return ``error`` for the caller to raise."""
    tx.triggers.add_invocation(
        trigger,
        source="webhook",
        outcome=InvocationOutcome.REJECTED,
        reason=reason,
        delivery_key=delivery_key,
        at=now,
    )
    tx.commit()
    return error


def _deliver(
    rt: Runtime,
    delivery: WebhookDelivery,
    now: datetime,
    digest: str,
    signature_key: str,
    delivery_key: str,
) -> WebhookResult:
    with rt.uow(write=True) as tx:
        trigger = tx.triggers.get(None, delivery.trigger_id)
        if trigger is None or trigger.kind is not TriggerKind.WEBHOOK:
            raise WebhookRejected("unknown")  # nothing to log it against
        known = trigger

        def reject(reason: str, error: Exception) -> Exception:
            return _log_rejection(tx, known, reason, delivery_key, now, error)

        reason = _refusal(rt, trigger, delivery, now)
        if reason is not None:
            if _refusals_flooding(tx, trigger, now, rt.settings.webhook_refusals_logged_per_minute):
                raise WebhookRejected(reason)  # the same answer, but the log stays bounded
            raise reject(reason, WebhookRejected(reason))
        window = timedelta(seconds=rt.settings.webhook_dedup_seconds)
        tx.triggers.forget_deliveries(trigger.id, before=now - window)
        found = tx.triggers.find_delivery(trigger.id, [signature_key, delivery_key])
        if found is not None:
            try:
                _check_key_reuse(found, delivery_key, digest, delivery)
            except IdempotencyKeyReused as exc:
                raise reject("idempotency-key-reused", exc) from None
            tx.triggers.add_invocation(
                trigger,
                source="webhook",
                outcome=InvocationOutcome.REPLAYED,
                run_id=found[2],
                delivery_key=found[0],
                at=now,
            )
            tx.commit()
            return WebhookResult(found[2], trigger.id, True)
        run_input = delivery.body
        try:
            member, version = _runnable(tx, trigger, run_input)
        except (NothingToRun, InputSchemaMismatch) as exc:
            raise reject(exc.slug or "rejected", exc) from None
        run = _queue_run(tx, trigger, member, version, run_input, RunOrigin.WEBHOOK, now)
        for key in (signature_key, delivery_key):
            if not tx.triggers.claim_delivery(trigger, key, digest, run.id, now):
                raise _LostRace  # rolls this transaction (and its run) back
        tx.triggers.add_invocation(
            trigger,
            source="webhook",
            outcome=InvocationOutcome.ACCEPTED,
            run_id=run.id,
            delivery_key=delivery_key,
            at=now,
        )
        _record_fired(tx, trigger, run, "webhook")
        tx.commit()
    return WebhookResult(run.id, trigger.id, False)
