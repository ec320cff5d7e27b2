"""Persistence of triggers, fired schedule slots, webhook delivery keys and invocations.

Reads for the API are scoped by workspace and never see
deleted triggers; the scheduler and webhook ingress find triggers across workspaces (they act
as the trigger's system actor). The slot and delivery-key claims are single statements
(``INSERT ... ON CONFLICT DO NOTHING`` for a slot; for a delivery's two keys, ``ON CONFLICT
DO UPDATE`` of a key out of the de-dup window only): of two concurrent claims of one key,
exactly one writes (on PostgreSQL the loser waits for the winner's commit, then writes
nothing).
Nothing here commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    Connection,
    Select,
    TextualSelect,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from domain.kernel.ids import new_id
from domain.persistence import tables
from domain.persistence.driver import DriverStatements
from domain.persistence.sql import count_rows, insert_once, utc, utc_or_none
from domain.runs import RunsTx
from domain.triggers.model import Invocation, InvocationOutcome, Trigger, TriggerKind


class TriggerRepository:
    def __init__(self, connection: Connection, *, for_update: bool = False) -> None:
        self._c = connection
        self._hot = DriverStatements(connection)  # what every webhook delivery runs
        self._postgres = connection.dialect.name == "postgresql"
        self._for_update = for_update and self._postgres

    # -- triggers ------------------------------------------------------------------------

    def add(self, trigger: Trigger) -> None:
        self._c.execute(
            insert(tables.triggers).values(
                id=trigger.id,
                workspace_id=trigger.workspace_id,
                member_id=trigger.member_id,
                kind=trigger.kind.value,
                name=trigger.name,
                description=trigger.description,
                enabled=trigger.enabled,
                cron=trigger.cron,
                timezone=trigger.timezone,
                input=trigger.input,
                secret_ciphertext=trigger.secret_ciphertext,
                previous_secret_ciphertext=trigger.previous_secret_ciphertext,
                previous_secret_expires_at=trigger.previous_secret_expires_at,
                active_since=trigger.active_since,
                created_by=trigger.created_by,
                created_at=trigger.created_at,
                updated_at=trigger.updated_at,
                deleted_at=trigger.deleted_at,
            )
        )

    def get(self, workspace_id: str | None, trigger_id: str) -> Trigger | None:
        """A live trigger of the workspace; with ``workspace_id=None``, any trigger, deleted
        ones included (ingress and the scheduler decide what a deleted trigger means)."""
        stmt = _TRIGGER_BY_ID[workspace_id is not None, self._for_update]
        params = {"trigger_id": trigger_id, "workspace_id": workspace_id}
        row = self._hot.execute(stmt, params).first()
        return None if row is None else _trigger(row)

    def list_live(
        self, workspace_id: str, after: str | None, limit: int, kind: str | None = None
    ) -> list[Trigger]:
        t = tables.triggers
        stmt = self._live(workspace_id, kind)
        if after is not None:
            stmt = stmt.where(t.c.id > after)
        rows = self._c.execute(stmt.order_by(t.c.id).limit(limit + 1)).all()
        return [_trigger(r) for r in rows]

    def count_invocations(self, workspace_id: str, trigger_id: str) -> int:
        return count_rows(self._c, self._invocations(workspace_id, trigger_id))

    def _invocations(self, workspace_id: str, trigger_id: str) -> Select[Any]:
        i = tables.trigger_invocations
        return select(i).where(i.c.workspace_id == workspace_id, i.c.trigger_id == trigger_id)

    def count_live(self, workspace_id: str, kind: str | None = None) -> int:
        return count_rows(self._c, self._live(workspace_id, kind))

    def _live(self, workspace_id: str, kind: str | None) -> Select[Any]:
        t = tables.triggers
        stmt = select(t).where(t.c.workspace_id == workspace_id, t.c.deleted_at.is_(None))
        if kind is not None:
            stmt = stmt.where(t.c.kind == kind)
        return stmt

    def save(self, trigger: Trigger) -> None:
        """Write the trigger's mutable fields (names, schedule, input, enabled, active since,
        secrets, deletion, update time)."""
        t = tables.triggers
        self._c.execute(
            update(t)
            .where(t.c.id == trigger.id)
            .values(
                name=trigger.name,
                description=trigger.description,
                enabled=trigger.enabled,
                cron=trigger.cron,
                timezone=trigger.timezone,
                input=trigger.input,
                secret_ciphertext=trigger.secret_ciphertext,
                previous_secret_ciphertext=trigger.previous_secret_ciphertext,
                previous_secret_expires_at=trigger.previous_secret_expires_at,
                active_since=trigger.active_since,
                updated_at=trigger.updated_at,
                deleted_at=trigger.deleted_at,
            )
        )

    def due_schedules(self) -> list[tuple[Trigger, datetime | None]]:
        """Every enabled, live schedule trigger with its latest fired slot (or None)."""
        t, s = tables.triggers, tables.schedule_slots
        last = (
            select(s.c.trigger_id, func.max(s.c.slot).label("last_slot"))
            .group_by(s.c.trigger_id)
            .subquery()
        )
        rows = self._c.execute(
            select(t, last.c.last_slot)
            .outerjoin(last, last.c.trigger_id == t.c.id)
            .where(
                t.c.kind == TriggerKind.SCHEDULE.value,
                t.c.enabled.is_(True),
                t.c.deleted_at.is_(None),
            )
            .order_by(t.c.id)
        ).all()
        return [(_trigger(r), utc_or_none(r.last_slot)) for r in rows]

    def last_slots(self, trigger_ids: list[str]) -> dict[str, datetime]:
        if not trigger_ids:
            return {}
        s = tables.schedule_slots
        rows = self._c.execute(
            select(s.c.trigger_id, func.max(s.c.slot).label("last_slot"))
            .where(s.c.trigger_id.in_(trigger_ids))
            .group_by(s.c.trigger_id)
        ).all()
        return {r.trigger_id: utc(r.last_slot) for r in rows}

    # -- claims --------------------------------------------------------------------------

    def claim_slot(
        self, trigger: Trigger, slot: datetime, run_id: str | None, now: datetime
    ) -> bool:
        """Record ``slot`` as fired by this transaction; False if another one claimed it."""
        return insert_once(
            self._c,
            tables.schedule_slots,
            ["trigger_id", "slot"],
            trigger_id=trigger.id,
            slot=slot,
            workspace_id=trigger.workspace_id,
            run_id=run_id,
            created_at=now,
        )

    def forget_deliveries(self, trigger_id: str, before: datetime) -> None:
        """Drop the trigger's delivery keys recorded before ``before`` (out of the window)."""
        self._c.execute(_FORGET_DELIVERIES, {"trigger_id": trigger_id, "before": before})

    def find_delivery(
        self, trigger_id: str, keys: tuple[str, str], since: datetime | None = None
    ) -> tuple[str, str, str] | None:
        """The first of ``keys`` already recorded (at or after ``since``, when given): (key,
        body hash, run id). Rows older than ``since`` are out of the de-dup window: ignored
        here, taken over by ``claim_deliveries`` and deleted by ``forget_deliveries``."""
        params = {"trigger_id": trigger_id, "key_0": keys[0], "key_1": keys[1]}
        rows = self._hot.execute(_FIND_DELIVERY, params).all()
        found = {
            r.delivery_key: (r.delivery_key, r.body_hash, r.run_id)
            for r in rows
            if since is None or utc(r.created_at) >= since
        }
        for key in keys:
            if key in found:
                return found[key]
        return None

    def claim_deliveries(
        self,
        trigger: Trigger,
        keys: tuple[str, str],
        body_hash: str,
        run_id: str,
        now: datetime,
        expired_before: datetime,
    ) -> bool:
        """Record both ``keys`` as delivered (starting ``run_id``), in one statement; False
        if either is recorded already at or after ``expired_before``. A row older than that
        (out of the de-dup window, not yet forgotten) is taken over."""
        claimed = self._hot.execute(
            _CLAIM_DELIVERIES,
            {
                "trigger_id": trigger.id,
                "key_0": keys[0],
                "key_1": keys[1],
                "workspace_id": trigger.workspace_id,
                "body_hash": body_hash,
                "run_id": run_id,
                "now": now,
                "expired_before": expired_before,
            },
        ).all()
        return len(claimed) == len(keys)

    # -- invocations ---------------------------------------------------------------------

    def add_invocation(
        self,
        trigger: Trigger,
        *,
        source: str,
        outcome: InvocationOutcome,
        at: datetime,
        reason: str | None = None,
        run_id: str | None = None,
        slot: datetime | None = None,
        delivery_key: str | None = None,
        secret: str | None = None,
    ) -> None:
        self._hot.execute(
            _INSERT_INVOCATION,
            {
                "id": new_id("inv"),
                "workspace_id": trigger.workspace_id,
                "trigger_id": trigger.id,
                "at": at,
                "source": source,
                "outcome": outcome.value,
                "reason": reason,
                "run_id": run_id,
                "slot": slot,
                "delivery_key": delivery_key,
                "secret": secret,
            },
        )

    def count_rejections(self, trigger_id: str, since: datetime, up_to: int) -> int:
        """The trigger's rejected invocations logged at or after ``since``, counted up to
        ``up_to`` (the count stops there, so a flood costs a bounded read)."""
        i = tables.trigger_invocations
        recent = (
            select(i.c.at)
            .where(
                i.c.trigger_id == trigger_id,
                i.c.at >= since,
                # Literal, as the partial index spells it: no planner proves it from a parameter.
                text(tables.REJECTED_INVOCATIONS),
            )
            .limit(up_to)
            .subquery()
        )
        return int(self._c.execute(select(func.count()).select_from(recent)).scalar_one())

    def list_invocations(
        self, workspace_id: str, trigger_id: str, before: str | None, limit: int
    ) -> list[Invocation]:
        """Newest first; the cursor is an upper bound."""
        i = tables.trigger_invocations
        stmt = self._invocations(workspace_id, trigger_id)
        if before is not None:
            stmt = stmt.where(i.c.id < before)
        rows = self._c.execute(stmt.order_by(i.c.id.desc()).limit(limit + 1)).all()
        return [_invocation(r) for r in rows]


def _trigger(row: Any) -> Trigger:
    return Trigger(
        id=row.id,
        workspace_id=row.workspace_id,
        member_id=row.member_id,
        kind=TriggerKind(row.kind),
        name=row.name,
        description=row.description,
        enabled=bool(row.enabled),
        cron=row.cron,
        timezone=row.timezone,
        input=row.input,
        secret_ciphertext=row.secret_ciphertext,
        previous_secret_ciphertext=row.previous_secret_ciphertext,
        previous_secret_expires_at=utc_or_none(row.previous_secret_expires_at),
        active_since=utc(row.active_since),
        created_by=row.created_by,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        deleted_at=utc_or_none(row.deleted_at),
    )


def _invocation(row: Any) -> Invocation:
    return Invocation(
        id=row.id,
        workspace_id=row.workspace_id,
        trigger_id=row.trigger_id,
        at=utc(row.at),
        source=row.source,
        outcome=InvocationOutcome(row.outcome),
        reason=row.reason,
        run_id=row.run_id,
        slot=utc_or_none(row.slot),
        delivery_key=row.delivery_key,
        secret=row.secret,
    )


class TriggersTx(RunsTx, Protocol):
    """What the trigger use cases and firing need of a unit of work."""

    triggers: TriggerRepository


def _trigger_by_id(in_workspace: bool, for_update: bool) -> Select[Any]:
    t = tables.triggers
    stmt = select(t).where(t.c.id == bindparam("trigger_id"))
    if in_workspace:
        stmt = stmt.where(t.c.workspace_id == bindparam("workspace_id"), t.c.deleted_at.is_(None))
    return stmt.with_for_update() if for_update else stmt


#: ``get``'s four statements, built once (every webhook delivery reads its trigger).
_TRIGGER_BY_ID = {(w, u): _trigger_by_id(w, u) for w in (False, True) for u in (False, True)}


def _find_delivery() -> Select[Any]:
    # By primary key only: with the window's bound in the WHERE, SQLite's planner chose the
    # (trigger_id, created_at) index and scanned every key of the window on each delivery.
    # The window is checked on the (at most two) rows found.
    d = tables.webhook_deliveries
    return select(d.c.delivery_key, d.c.body_hash, d.c.run_id, d.c.created_at).where(
        d.c.trigger_id == bindparam("trigger_id"),
        # Two plain parameters, not an expanding IN: expanding rewrites the statement on
        # every execution (about 2% of a delivery's instructions; ADR 0063).
        d.c.delivery_key.in_([bindparam("key_0"), bindparam("key_1")]),
    )


# What every webhook delivery runs, built once (building them cost more CPU than running).
_FIND_DELIVERY = _find_delivery()
_FORGET_DELIVERIES = delete(tables.webhook_deliveries).where(
    tables.webhook_deliveries.c.trigger_id == bindparam("trigger_id"),
    tables.webhook_deliveries.c.created_at < bindparam("before"),
)
_INSERT_INVOCATION = insert(tables.trigger_invocations)


def _claim_deliveries() -> TextualSelect:
    # One INSERT of both keys; ON CONFLICT takes over a row only once it is out of the window,
    # so expired keys need no DELETE before the claim (they are forgotten now and then).
    # RETURNING names the rows written: of two concurrent claims of a key, one gets it.
    # Written as text: SQLAlchemy does not cache a multi-row upsert it builds (it compiled
    # this one on every delivery). The same SQL runs on SQLite and PostgreSQL.
    d = tables.webhook_deliveries
    return (
        text(
            """INSERT INTO webhook_deliveries
               (trigger_id, delivery_key, workspace_id, body_hash, run_id, created_at)
           VALUES (:trigger_id, :key_0, :workspace_id, :body_hash, :run_id, :now),
                  (:trigger_id, :key_1, :workspace_id, :body_hash, :run_id, :now)
           ON CONFLICT (trigger_id, delivery_key) DO UPDATE SET
               workspace_id = excluded.workspace_id, body_hash = excluded.body_hash,
               run_id = excluded.run_id, created_at = excluded.created_at
           WHERE webhook_deliveries.created_at < :expired_before
           RETURNING delivery_key"""
        )
        .bindparams(
            bindparam("now", type_=d.c.created_at.type),
            bindparam("expired_before", type_=d.c.created_at.type),
        )
        .columns(d.c.delivery_key)
    )


_CLAIM_DELIVERIES = _claim_deliveries()
