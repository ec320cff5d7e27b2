"""Persistence of runs, run events, approvals, idempotency keys, cost and notes.

Same rules as ``domain.repository``: scoped by workspace (except the dispatcher's claim, which
works across workspaces as a system actor), rows become dataclasses, nothing commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from domain import orm
from domain.errors import IdempotencyKeyReused
from domain.ids import new_id
from domain.model import (
    Approval,
    ApprovalStatus,
    MemberCost,
    Run,
    RunEvent,
    RunOrigin,
    RunStatus,
)
from domain.repository import _utc, _utc_or_none


class RunRepository:
    def __init__(self, connection: Connection, *, for_update: bool = False) -> None:
        self._c = connection
        self._postgres = connection.dialect.name == "postgresql"
        self._for_update = for_update and self._postgres

    # -- runs ----------------------------------------------------------------------------

    def add_run(self, run: Run) -> None:
        self._c.execute(insert(orm.runs).values(**_run_values(run)))

    def get_run(self, workspace_id: str | None, run_id: str) -> Run | None:
        stmt = select(orm.runs).where(orm.runs.c.id == run_id)
        if workspace_id is not None:
            stmt = stmt.where(orm.runs.c.workspace_id == workspace_id)
        if self._for_update:
            stmt = stmt.with_for_update()
        row = self._c.execute(stmt).first()
        return None if row is None else _run(row)

    def update_run(
        self, run_id: str, values: dict[str, Any], *, expect_status: str | None = None
    ) -> int:
        stmt = update(orm.runs).where(orm.runs.c.id == run_id)
        if expect_status is not None:
            stmt = stmt.where(orm.runs.c.status == expect_status)
        return int(self._c.execute(stmt.values(**values)).rowcount)

    def list_runs(
        self,
        workspace_id: str,
        before: str | None,
        limit: int,
        filters: dict[str, Any],
    ) -> list[Run]:
        r = orm.runs
        stmt = select(r).where(r.c.workspace_id == workspace_id)
        for name in ("member_id", "crew_id", "status", "origin", "parent_run_id"):
            if filters.get(name) is not None:
                stmt = stmt.where(r.c[name] == filters[name])
        if filters.get("created_after") is not None:
            stmt = stmt.where(r.c.created_at >= filters["created_after"])
        if filters.get("created_before") is not None:
            stmt = stmt.where(r.c.created_at < filters["created_before"])
        if before is not None:
            stmt = stmt.where(r.c.id < before)
        rows = self._c.execute(stmt.order_by(r.c.id.desc()).limit(limit + 1)).all()
        return [_run(row) for row in rows]

    def claimable_run_id(self, now: datetime) -> str | None:
        """The oldest queued run, or a running one whose worker's lease expired.

        On PostgreSQL the row is locked with ``SKIP LOCKED`` so concurrent claimers each get a
        different run; on SQLite the writing transaction already holds the database lock.
        """
        r = orm.runs
        stmt = (
            select(r.c.id)
            .where(
                or_(
                    r.c.status == RunStatus.QUEUED.value,
                    (r.c.status == RunStatus.RUNNING.value) & (r.c.lease_expires_at < now),
                )
            )
            .order_by(r.c.id)
            .limit(1)
        )
        if self._postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        row = self._c.execute(stmt).first()
        return None if row is None else str(row.id)

    # -- events --------------------------------------------------------------------------

    def append_event(
        self,
        run: Run | str,
        seq: int,
        workspace_id: str,
        event_type: str,
        data: dict[str, Any],
        now: datetime,
    ) -> None:
        run_id = run if isinstance(run, str) else run.id
        self._c.execute(
            insert(orm.run_events).values(
                run_id=run_id,
                seq=seq,
                workspace_id=workspace_id,
                at=now,
                type=event_type,
                data=data,
            )
        )

    def list_events(
        self, workspace_id: str, run_id: str, after_seq: int, limit: int
    ) -> list[RunEvent]:
        e = orm.run_events
        rows = self._c.execute(
            select(e)
            .where(e.c.workspace_id == workspace_id, e.c.run_id == run_id, e.c.seq > after_seq)
            .order_by(e.c.seq)
            .limit(limit + 1)
        ).all()
        return [RunEvent(r.run_id, r.seq, _utc(r.at), r.type, r.data) for r in rows]

    # -- idempotency ---------------------------------------------------------------------

    def find_idempotency_key(self, workspace_id: str, key: str) -> tuple[str, str] | None:
        k = orm.idempotency_keys
        row = self._c.execute(
            select(k.c.request_hash, k.c.run_id).where(
                k.c.workspace_id == workspace_id, k.c.key == key
            )
        ).first()
        return None if row is None else (str(row.request_hash), str(row.run_id))

    def add_idempotency_key(
        self, workspace_id: str, key: str, request_hash: str, run_id: str, now: datetime
    ) -> None:
        """:raises IdempotencyKeyReused: a concurrent request with the same key won."""
        try:
            with self._c.begin_nested():
                self._c.execute(
                    insert(orm.idempotency_keys).values(
                        workspace_id=workspace_id,
                        key=key,
                        request_hash=request_hash,
                        run_id=run_id,
                        created_at=now,
                    )
                )
        except IntegrityError as exc:
            raise IdempotencyKeyReused(key) from exc

    # -- approvals -----------------------------------------------------------------------

    def add_approval(self, approval: Approval) -> None:
        self._c.execute(
            insert(orm.approvals).values(
                id=approval.id,
                workspace_id=approval.workspace_id,
                run_id=approval.run_id,
                member_id=approval.member_id,
                version_id=approval.version_id,
                version_number=approval.version_number,
                tool=approval.tool,
                effect_class=approval.effect_class,
                arguments=approval.arguments,
                call_id=approval.call_id,
                status=approval.status.value,
                reason=approval.reason,
                decided_by=approval.decided_by,
                decided_at=approval.decided_at,
                created_at=approval.created_at,
            )
        )

    def get_approval(self, workspace_id: str, approval_id: str) -> Approval | None:
        a = orm.approvals
        row = self._c.execute(
            select(a).where(a.c.workspace_id == workspace_id, a.c.id == approval_id)
        ).first()
        return None if row is None else _approval(row)

    def decide_approval(
        self, approval_id: str, status: ApprovalStatus, by: str, reason: str | None, now: datetime
    ) -> int:
        """Record a decision on a pending approval; 0 rows when someone decided first."""
        a = orm.approvals
        result = self._c.execute(
            update(a)
            .where(a.c.id == approval_id, a.c.status == ApprovalStatus.PENDING.value)
            .values(status=status.value, decided_by=by, decided_at=now, reason=reason)
        )
        return int(result.rowcount)

    def list_approvals(
        self, workspace_id: str, after: str | None, limit: int, filters: dict[str, Any]
    ) -> list[Approval]:
        a = orm.approvals
        stmt = select(a).where(a.c.workspace_id == workspace_id)
        for name in ("status", "run_id", "member_id"):
            if filters.get(name) is not None:
                stmt = stmt.where(a.c[name] == filters[name])
        if after is not None:
            stmt = stmt.where(a.c.id > after)
        rows = self._c.execute(stmt.order_by(a.c.id).limit(limit + 1)).all()
        return [_approval(r) for r in rows]

    # -- cost ----------------------------------------------------------------------------

    def add_cost(
        self,
        workspace_id: str,
        run_id: str,
        member_id: str,
        model: str,
        tokens_in: int,
        tokens_out: int,
        cost_units: float,
        now: datetime,
    ) -> None:
        self._c.execute(
            insert(orm.cost_ledger).values(
                id=new_id("cst"),
                workspace_id=workspace_id,
                run_id=run_id,
                member_id=member_id,
                at=now,
                model=model,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost_units=cost_units,
            )
        )

    def cost_by_member(self, workspace_id: str, start: datetime, end: datetime) -> list[MemberCost]:
        r, c = orm.runs, orm.cost_ledger
        run_rows = self._c.execute(
            select(r.c.member_id, func.count().label("runs"))
            .where(r.c.workspace_id == workspace_id, r.c.created_at >= start, r.c.created_at < end)
            .group_by(r.c.member_id)
        ).all()
        cost_rows = self._c.execute(
            select(
                c.c.member_id,
                func.sum(c.c.tokens_in).label("tokens_in"),
                func.sum(c.c.tokens_out).label("tokens_out"),
                func.sum(c.c.cost_units).label("cost_units"),
            )
            .where(c.c.workspace_id == workspace_id, c.c.at >= start, c.c.at < end)
            .group_by(c.c.member_id)
        ).all()
        totals: dict[str, list[Any]] = {}
        for row in run_rows:
            totals.setdefault(row.member_id, [0, 0, 0, 0.0])[0] = int(row.runs)
        for row in cost_rows:
            entry = totals.setdefault(row.member_id, [0, 0, 0, 0.0])
            entry[1], entry[2] = int(row.tokens_in or 0), int(row.tokens_out or 0)
            entry[3] = float(row.cost_units or 0.0)
        return [
            MemberCost(member_id, v[0], v[1], v[2], round(v[3], 6))
            for member_id, v in sorted(totals.items())
        ]

    # -- authoring sessions --------------------------------------------------------------

    def add_authoring_session(self, values: dict[str, Any]) -> None:
        columns = set(orm.authoring_sessions.c.keys())
        self._c.execute(
            insert(orm.authoring_sessions).values(
                **{k: v for k, v in values.items() if k in columns}
            )
        )

    def get_authoring_session(self, workspace_id: str, session_id: str) -> dict[str, Any] | None:
        a = orm.authoring_sessions
        stmt = select(a).where(a.c.workspace_id == workspace_id, a.c.id == session_id)
        if self._for_update:
            stmt = stmt.with_for_update()
        row = self._c.execute(stmt).first()
        return None if row is None else _session_row(row)

    def update_authoring_session(self, session_id: str, values: dict[str, Any]) -> None:
        a = orm.authoring_sessions
        self._c.execute(update(a).where(a.c.id == session_id).values(**values))

    # -- notes (the internal tools' storage) ---------------------------------------------

    def read_note(self, workspace_id: str, key: str) -> str | None:
        n = orm.notes
        row = self._c.execute(
            select(n.c.value).where(n.c.workspace_id == workspace_id, n.c.key == key)
        ).first()
        return None if row is None else str(row.value)

    def write_note(self, workspace_id: str, key: str, value: str, now: datetime) -> None:
        """Insert or replace in one statement: concurrent first writes of a key cannot collide."""
        n = orm.notes
        upsert = postgresql_insert if self._postgres else sqlite_insert
        stmt = upsert(n).values(workspace_id=workspace_id, key=key, value=value, updated_at=now)
        self._c.execute(
            stmt.on_conflict_do_update(
                index_elements=[n.c.workspace_id, n.c.key],
                set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
            )
        )


def _run_values(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "workspace_id": run.workspace_id,
        "member_id": run.member_id,
        "crew_id": run.crew_id,
        "version_id": run.version_id,
        "version_number": run.version_number,
        "origin": run.origin.value,
        "status": run.status.value,
        "dry_run": run.dry_run,
        "parent_run_id": run.parent_run_id,
        "depth": run.depth,
        "input": run.input,
        "output": run.output,
        "error": run.error,
        "state": run.state,
        "created_by": run.created_by,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "claimed_by": run.claimed_by,
        "lease_expires_at": run.lease_expires_at,
        "attempts": run.attempts,
        "next_seq": run.next_seq,
        "tokens_in": run.tokens_in,
        "tokens_out": run.tokens_out,
        "cost_units": run.cost_units,
    }


def _run(row: Any) -> Run:
    return Run(
        id=row.id,
        workspace_id=row.workspace_id,
        member_id=row.member_id,
        crew_id=row.crew_id,
        version_id=row.version_id,
        version_number=row.version_number,
        origin=RunOrigin(row.origin),
        status=RunStatus(row.status),
        dry_run=bool(row.dry_run),
        parent_run_id=row.parent_run_id,
        depth=row.depth,
        input=row.input,
        output=row.output,
        error=row.error,
        state=row.state,
        created_by=row.created_by,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        started_at=_utc_or_none(row.started_at),
        finished_at=_utc_or_none(row.finished_at),
        claimed_by=row.claimed_by,
        lease_expires_at=_utc_or_none(row.lease_expires_at),
        attempts=row.attempts,
        next_seq=row.next_seq,
        tokens_in=row.tokens_in,
        tokens_out=row.tokens_out,
        cost_units=float(row.cost_units),
    )


def _approval(row: Any) -> Approval:
    return Approval(
        id=row.id,
        workspace_id=row.workspace_id,
        run_id=row.run_id,
        member_id=row.member_id,
        version_id=row.version_id,
        version_number=row.version_number,
        tool=row.tool,
        effect_class=row.effect_class,
        arguments=row.arguments,
        call_id=row.call_id,
        status=ApprovalStatus(row.status),
        reason=row.reason,
        decided_by=row.decided_by,
        decided_at=_utc_or_none(row.decided_at),
        created_at=_utc(row.created_at),
    )


def _session_row(row: Any) -> dict[str, Any]:
    values = dict(row._mapping)
    values["created_at"] = _utc(values["created_at"])
    values["updated_at"] = _utc(values["updated_at"])
    return values
