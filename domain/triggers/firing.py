"""Firing triggers: the scheduler's tick and webhook ingress.

Both find the trigger across workspaces, then act in the trigger's workspace as a system actor
(runs are ``created_by`` ``trigger:<id>``) and start the run through the one run-start path
(``domain.runs.queue_run``). Every firing of a known trigger is appended to its invocation log:
accepted (a run started), replayed (a duplicate answered with the original run) or rejected
(with a reason). Rejections are logged in their own commit before the error is raised, so the
log keeps them even though the request fails.

De-duplication is by unique keys claimed in the run's own transaction: a schedule slot
(``schedule_slots``' primary key) or a webhook delivery key (``webhook_deliveries``'), so two
processes can never start two runs for one slot or one delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.budgets import BudgetExceeded
from domain.kernel.clock import Clock
from domain.kernel.ports import SecretBox, SecretUnreadable
from domain.kernel.unit_of_work import Store
from domain.runs import (
    IdempotencyKeyReused,
    InputSchemaMismatch,
    MemberArchived,
    NothingToRun,
    Run,
    RunOrigin,
    RunRequest,
    queue_run,
)
from domain.triggers.errors import WebhookRejected
from domain.triggers.model import (
    InvocationOutcome,
    Trigger,
    TriggerKind,
    WebhookDelivery,
    WebhookResult,
    WebhookSettings,
)
from domain.triggers.repository import TriggersTx
from domain.triggers.schedule import latest_due_slot
from domain.triggers.webhook_signature import body_hash, refusal


@dataclass(frozen=True)
class Firing:
    """One slot the scheduler fired: the run it started, or why it started none."""

    trigger_id: str
    slot: datetime
    run_id: str | None
    reason: str | None = None


#: How often a process deletes a trigger's webhook delivery keys out of the de-dup window.
FORGET_EVERY = timedelta(minutes=1)


class _LostRace(Exception):
    """Another transaction claimed the same delivery key first (PostgreSQL only)."""


class TriggerFiring:
    """Schedules firing on the scheduler's tick, and signed webhook deliveries arriving."""

    def __init__(
        self,
        store: Store[TriggersTx],
        clock: Clock,
        secret_box: SecretBox,
        settings: WebhookSettings,
    ) -> None:
        self._store = store
        self._clock = clock
        self._secret_box = secret_box
        self.settings = settings
        # trigger id -> when this process next deletes its keys out of the window
        self._next_forgetting: dict[str, datetime] = {}

    # -- schedules -----------------------------------------------------------------------

    def tick(self) -> list[Firing]:
        """Fire the latest due slot of every enabled schedule trigger, as of now.

        Safe to run in several processes at once: each slot fires at most once.
        """
        now = self._clock.now()
        with self._store() as tx:
            candidates = tx.triggers.due_schedules()
        fired: list[Firing] = []
        for trigger, last_slot in candidates:
            assert trigger.cron is not None and trigger.timezone is not None
            slot = latest_due_slot(trigger.cron, trigger.timezone, now, trigger.active_since)
            if slot is None or (last_slot is not None and slot <= last_slot):
                continue
            firing = self.fire_slot(trigger.id, slot, now)
            if firing is not None:
                fired.append(firing)
        return fired

    def fire_slot(self, trigger_id: str, slot: datetime, now: datetime) -> Firing | None:
        """Start the run of one slot, unless the slot was fired already (then None).

        The slot claim and the run are one transaction: if another scheduler claimed the slot,
        this one's run is rolled back with it. A slot whose member cannot run is claimed too
        (so it is not retried every tick) and logged as rejected.
        """
        with self._store(write=True) as tx:
            trigger = tx.triggers.get(None, trigger_id)
            if (
                trigger is None
                or trigger.kind is not TriggerKind.SCHEDULE
                or not trigger.enabled
                or not trigger.live
                or slot < trigger.active_since
            ):
                return None  # changed since the tick read it
            try:
                run = _queue(tx, trigger, dict(trigger.input or {}), RunOrigin.SCHEDULE, now)
            except (NothingToRun, InputSchemaMismatch, BudgetExceeded) as exc:
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
            tx.commit()
        return Firing(trigger.id, slot, run.id)

    # -- webhooks ------------------------------------------------------------------------

    def receive_webhook(self, delivery: WebhookDelivery) -> WebhookResult:
        """Verify a delivery and start the trigger's member with its body as input, once.

        A duplicate (same signature, same Idempotency-Key, or without a key the same body)
        within the de-duplication window (``dedup_seconds``) answers the run of the first
        delivery, with ``replayed`` set; after it, the same body starts a new run.

        :raises WebhookRejected: unknown, deleted or disabled trigger, bad signature or
            timestamp outside the window (one error for all: it reveals nothing).
        :raises IdempotencyKeyReused: the Idempotency-Key came with another body before.
        :raises NothingToRun: the member has no published version any more (an archived
            member is refused as a disabled trigger is: WebhookRejected).
        :raises InputSchemaMismatch: the body breaks the member's input schema.
        """
        now = self._clock.now()
        digest = body_hash(delivery.raw_body)
        signature_key, delivery_key = _delivery_keys(delivery, digest)
        try:
            return self._deliver(delivery, now, digest, signature_key, delivery_key)
        except _LostRace:
            pass
        # A concurrent identical delivery committed first: answer its run.
        with self._store(write=True) as tx:
            trigger = tx.triggers.get(None, delivery.trigger_id)
            found = tx.triggers.find_delivery(delivery.trigger_id, (signature_key, delivery_key))
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

    def _deliver(
        self,
        delivery: WebhookDelivery,
        now: datetime,
        digest: str,
        signature_key: str,
        delivery_key: str,
    ) -> WebhookResult:
        with self._store(write=True) as tx:
            trigger = tx.triggers.get(None, delivery.trigger_id)
            if trigger is None or trigger.kind is not TriggerKind.WEBHOOK:
                raise WebhookRejected("unknown")  # nothing to log it against
            known = trigger

            def reject(reason: str, error: Exception) -> Exception:
                return _log_rejection(tx, known, reason, delivery_key, now, error)

            reason, verified_by = self._refusal(trigger, delivery, now)
            if reason is not None:
                limit = self.settings.refusals_logged_per_minute
                if _refusals_flooding(tx, trigger, now, limit):
                    raise WebhookRejected(reason)  # the same answer, but the log stays bounded
                raise reject(reason, WebhookRejected(reason))
            since = now - timedelta(seconds=self.settings.dedup_seconds)
            # Rows out of the window are ignored here, taken over by a new claim of their key
            # and deleted now and then on the accepted path below (_forgetting_due).
            found = tx.triggers.find_delivery(trigger.id, (signature_key, delivery_key), since)
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
                    secret=verified_by,
                )
                tx.commit()
                return WebhookResult(found[2], trigger.id, True)
            try:
                run = _queue(tx, trigger, delivery.body, RunOrigin.WEBHOOK, now)
            except MemberArchived as exc:  # the same answer as a disabled trigger
                raise reject(exc.slug or "rejected", WebhookRejected("member-archived")) from None
            except (NothingToRun, InputSchemaMismatch, BudgetExceeded) as exc:
                raise reject(exc.slug or "rejected", exc) from None
            keys = (signature_key, delivery_key)
            if not tx.triggers.claim_deliveries(trigger, keys, digest, run.id, now, since):
                raise _LostRace  # rolls this transaction (and its run) back
            if self._forgetting_due(trigger.id, now):
                tx.triggers.forget_deliveries(trigger.id, before=since)
            tx.triggers.add_invocation(
                trigger,
                source="webhook",
                outcome=InvocationOutcome.ACCEPTED,
                run_id=run.id,
                delivery_key=delivery_key,
                at=now,
                secret=verified_by,
            )
            tx.commit()
        return WebhookResult(run.id, trigger.id, False)

    def _forgetting_due(self, trigger_id: str, now: datetime) -> bool:
        """Whether this accepted delivery also deletes the trigger's expired keys: the first
        one after start and then one every ``FORGET_EVERY``. Deleting on every delivery cost
        a statement each (ADR 0059); expired keys in between are ignored, or taken over."""
        due = self._next_forgetting.get(trigger_id)
        if due is not None and now < due:
            return False
        self._next_forgetting[trigger_id] = now + FORGET_EVERY
        return True

    def _refusal(
        self, trigger: Trigger, delivery: WebhookDelivery, now: datetime
    ) -> tuple[str | None, str | None]:
        """(why the delivery is refused or None, which secret verified it: ``current`` or
        ``previous``, the one a rotation replaced, while its grace period lasts)."""
        assert trigger.secret_ciphertext is not None
        candidates = [("current", trigger.secret_ciphertext)]
        expires = trigger.previous_secret_expires_at
        if trigger.previous_secret_ciphertext is not None and expires is not None and now < expires:
            candidates.append(("previous", trigger.previous_secret_ciphertext))
        reason: str | None = "secret-unreadable"
        verified_by = None
        for which, ciphertext in candidates:
            try:
                secret = self._secret_box.open(ciphertext)
            except SecretUnreadable:
                continue
            why = refusal(secret, delivery.timestamp, delivery.signature, delivery.raw_body, now)
            if why is None:
                reason, verified_by = None, which
                break
            if reason == "secret-unreadable" or why != "bad-signature":
                reason = why  # the most telling reason: a stale timestamp over a mismatch
        if reason is not None:
            return reason, None
        if not trigger.live:
            return "deleted", verified_by
        if not trigger.enabled:
            return "disabled", verified_by
        return None, verified_by


def _queue(
    tx: TriggersTx, trigger: Trigger, run_input: dict[str, object], origin: RunOrigin, now: datetime
) -> Run:
    request = RunRequest(
        member_id=trigger.member_id,
        input=dict(run_input),
        origin=origin,
        created_by=trigger.subject,
        trigger_id=trigger.id,
    )
    return queue_run(tx, trigger.workspace_id, request, now)


def _delivery_keys(delivery: WebhookDelivery, digest: str) -> tuple[str, str]:
    """(signature key, delivery key): a replayed signature maps to its original run whatever
    Idempotency-Key it is re-sent with (the header is not signed); the delivery key is the
    Idempotency-Key, else the body hash."""
    signature_key = "sig:" + delivery.signature.lower().removeprefix("sha256=")
    if delivery.idempotency_key is not None:
        return signature_key, "key:" + delivery.idempotency_key
    return signature_key, "body:" + digest


def _check_key_reuse(
    found: tuple[str, str, str], delivery_key: str, digest: str, delivery: WebhookDelivery
) -> None:
    if found[0] == delivery_key and delivery_key.startswith("key:") and found[1] != digest:
        assert delivery.idempotency_key is not None
        raise IdempotencyKeyReused(delivery.idempotency_key)


def _refusals_flooding(tx: TriggersTx, trigger: Trigger, now: datetime, per_minute: int) -> bool:
    """Whether the trigger's log already holds ``per_minute`` rejections from the last minute.

    Anyone who knows a trigger id can send forged deliveries; logging each one would let them
    grow the log without bound. Deliveries that pass the signature are always logged.
    """
    since = now - timedelta(minutes=1)
    return tx.triggers.count_rejections(trigger.id, since, per_minute) >= per_minute


def _log_rejection(
    tx: TriggersTx,
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
