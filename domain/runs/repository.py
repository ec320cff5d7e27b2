"""Persistence of runs, run events, approvals and idempotency keys (nothing here commits).

Scoped by workspace, except the dispatcher's reads, which work across workspaces as a system
actor. Who holds a running run's lease is written when a worker claims it (``save(...,
lease=True)``), renewed by a step's save that goes on (``lease=True``, in its commit) and
cleared when the run leaves ``running``; a heartbeat renews only the lease (``extend_lease``).
A save without ``lease=True`` leaves the lease alone, so it never moves the lease back.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import (
    Connection,
    Select,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError

from domain.budgets import BudgetsTx
from domain.cost import CostLedger
from domain.members import MembersTx
from domain.persistence import tables
from domain.persistence.driver import DriverStatements
from domain.persistence.sql import utc, utc_or_none
from domain.runs.errors import IdempotencyKeyReused
from domain.runs.model import (
    Approval,
    ApprovalFilter,
    ApprovalStatus,
    EventDraft,
    Run,
    RunEvent,
    RunFilter,
    RunOrigin,
    RunState,
    RunStatus,
)
from domain.tools import NoteRepository

# Columns a run is born with and never changes.
_FIXED_COLUMNS = (
    "id",
    "workspace_id",
    "member_id",
    "crew_id",
    "version_id",
    "version_number",
    "origin",
    "dry_run",
    "parent_run_id",
    "depth",
    "input",
    "created_by",
    "created_at",
    "traceparent",
)


class RunOwnership(NamedTuple):
    """The columns of a run that say whether a worker still holds it as it left it."""

    status: RunStatus
    claimed_by: str | None
    next_seq: int
    lease_expires_at: datetime | None


class RunRepository:
    def __init__(self, connection: Connection, *, for_update: bool = False) -> None:
        self._c = connection
        self._hot = DriverStatements(connection)  # what every run start and step runs
        self._postgres = connection.dialect.name == "postgresql"
        self._for_update = for_update and self._postgres
        # The state of each run as read or written in this transaction: a save whose state
        # is unchanged skips the (large) state column.
        self._states: dict[str, RunState] = {}

    # -- runs ----------------------------------------------------------------------------

    def add(self, run: Run, events: Sequence[EventDraft], now: datetime) -> Run:
        """Insert a new run with its first events; return it with its next free ``seq``."""
        stored = run.with_next_seq(run.next_seq + len(events))
        self._states[run.id] = run.state
        if self._postgres and events:  # one statement (ADR 0071)
            params = {f"r_{column}": value for column, value in _run_values(stored).items()}
            params.update(_event_params(run, events, now))
            self._hot.execute(_add_statement(len(events)), params).all()
            return stored
        self._hot.execute(_INSERT_RUN, _run_values(stored))
        self._insert_events(run, events, now)
        return stored

    def get(self, workspace_id: str | None, run_id: str) -> Run | None:
        """A run of the workspace; with ``workspace_id=None`` (the dispatcher), any run. Row
        locked in a writing unit of work on PostgreSQL."""
        stmt = _RUN_BY_ID[workspace_id is not None, self._for_update]
        row = self._hot.execute(stmt, {"run_id": run_id, "workspace_id": workspace_id}).first()
        if row is None:
            return None
        run = _run(row)
        self._states[run.id] = run.state
        return run

    def ownership(self, run_id: str) -> RunOwnership | None:
        """Who holds the run and how far it has gone, without reading (and decoding) its
        state: what the dispatcher compares with the run it last saved. Row locked in a
        writing unit of work on PostgreSQL, as ``get``."""
        row = self._hot.execute(_OWNERSHIP[self._for_update], {"run_id": run_id}).first()
        if row is None:
            return None
        return RunOwnership(
            RunStatus(row.status), row.claimed_by, row.next_seq, utc_or_none(row.lease_expires_at)
        )

    def stored_as(self, run: Run) -> None:
        """Note that ``run``'s state is the one stored (its caller checked, with ``ownership``,
        that nothing changed since it saved it): a save with that state skips the column."""
        self._states[run.id] = run.state

    def save(
        self, run: Run, *, expect_status: RunStatus | None = None, lease: bool = False
    ) -> bool:
        """Write the run's mutable fields; False when ``expect_status`` no longer holds.

        The lease is written with ``lease=True`` (a claim) or when the run is not running.
        """
        values = _written_values(run, lease=lease, stored_state=self._states.get(run.id))
        values["b_run_id"] = run.id
        if expect_status is not None:
            values["b_expect_status"] = expect_status.value
        stmt = _SAVE_RUN[expect_status is not None]
        saved = int(self._hot.execute(stmt, values).rowcount) == 1
        if saved:
            self._states[run.id] = run.state
        return saved

    def save_step(
        self,
        run: Run,
        events: Sequence[EventDraft],
        now: datetime,
        *,
        since: Run | None,
        lease: bool = False,
    ) -> Run | None:
        """Append ``events`` to the run's timeline and save ``run`` with them (a step); the run
        as saved (with its next free ``seq``), or None when nothing was written.

        ``since`` is the run as the worker taking the step last saw it (read or saved): the
        step is written only if the row still says what it said then (running, claimed by
        the same worker, at the same event), and the row is locked from that write on (the
        worker needs no read beforehand to know the run is still its own). Without
        ``since``, the caller already holds the row (a claim) and the run is saved as it is.
        On PostgreSQL one statement does both (the events are inserted only if the run's row
        was updated); on SQLite, the update, then the events.
        """
        stored = run.with_next_seq(run.next_seq + len(events))
        unchanged = self._states.get(run.id) if since is None else since.state
        values = _written_values(stored, lease=lease, stored_state=unchanged)
        where: dict[str, Any] = {"b_run_id": run.id}
        if since is not None:
            where["b_status"] = RunStatus.RUNNING.value
            where["b_claimed_by"] = since.claimed_by
            where["b_next_seq"] = since.next_seq
        guard = since is not None
        if not self._postgres or not events:
            if int(self._hot.execute(_SAVE_STEP[guard], {**values, **where}).rowcount) != 1:
                return None
            self._insert_events(run, events, now)
        else:
            params = {f"s_{column}": value for column, value in values.items()}
            params.update(where)
            params.update(_event_params(run, events, now))
            statement = _step_statement(frozenset(values), len(events), guard)
            if len(self._hot.execute(statement, params).all()) != len(events):
                return None
        self._states[run.id] = run.state
        return stored

    def extend_lease(self, run_id: str, until: datetime) -> None:
        self._hot.execute(_EXTEND_LEASE, {"b_run_id": run_id, "lease_expires_at": until})

    def list_runs(
        self, workspace_id: str, before: str | None, limit: int, where: RunFilter
    ) -> list[Run]:
        """Newest first; the cursor is an upper bound (``limit + 1`` rows)."""
        r = tables.runs
        stmt = _runs_where(select(r), workspace_id, where)
        if before is not None:
            stmt = stmt.where(r.c.id < before)
        rows = self._c.execute(stmt.order_by(r.c.id.desc()).limit(limit + 1)).all()
        return [_run(row) for row in rows]

    def count_runs(self, workspace_id: str, where: RunFilter) -> int:
        """How many runs ``list_runs`` pages through under the same filter."""
        stmt = _runs_where(select(func.count()).select_from(tables.runs), workspace_id, where)
        return int(self._c.execute(stmt).scalar_one())

    def claimable(self, now: datetime) -> Run | None:
        """The oldest queued run, or a running one whose worker's lease expired, read whole
        (one statement finds and reads it).

        On PostgreSQL the row is locked with ``SKIP LOCKED`` so concurrent claimers each get a
        different run; on SQLite the writing transaction already holds the database lock.
        """
        row = self._hot.execute(_CLAIMABLE[self._postgres], {"now": now}).first()
        if row is None:
            return None
        run = _run(row)
        self._states[run.id] = run.state
        return run

    def overdue_ids(self, now: datetime, limit: int) -> list[str]:
        """Queued or running runs past their deadline (a waiting run's wait is bounded by its
        approval's expiry instead). Rows locked with ``SKIP LOCKED`` on PostgreSQL, so that
        several sweepers share the work."""
        r = tables.runs
        stmt = (
            select(r.c.id)
            .where(text(tables.UNFINISHED_RUNS), r.c.deadline_at < now)
            .order_by(r.c.id)
            .limit(limit)
        )
        if self._postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        return [str(row.id) for row in self._c.execute(stmt)]

    # -- events --------------------------------------------------------------------------

    def append_events(self, run: Run, events: Sequence[EventDraft], now: datetime) -> Run:
        """Append ``events`` to the run's timeline; return the run with its next free ``seq``
        (which the caller saves with the rest of its step)."""
        self._insert_events(run, events, now)
        return run.with_next_seq(run.next_seq + len(events))

    def _insert_events(self, run: Run, events: Sequence[EventDraft], now: datetime) -> None:
        if not events:
            return
        self._hot.execute(
            _INSERT_RUN_EVENTS,
            [
                {
                    "run_id": run.id,
                    "seq": run.next_seq + offset,
                    "workspace_id": run.workspace_id,
                    "at": now,
                    "type": event_type,
                    "data": data,
                }
                for offset, (event_type, data) in enumerate(events)
            ],
        )

    def list_events(
        self, workspace_id: str, run_id: str, after_seq: int, limit: int
    ) -> list[RunEvent]:
        e = tables.run_events
        rows = self._c.execute(
            select(e)
            .where(e.c.workspace_id == workspace_id, e.c.run_id == run_id, e.c.seq > after_seq)
            .order_by(e.c.seq)
            .limit(limit + 1)
        ).all()
        return [RunEvent(r.run_id, r.seq, utc(r.at), r.type, r.data) for r in rows]

    # -- idempotency ---------------------------------------------------------------------

    def find_idempotency_key(self, workspace_id: str, key: str) -> tuple[str, str] | None:
        k = tables.idempotency_keys
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
                    insert(tables.idempotency_keys).values(
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
            insert(tables.approvals).values(
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
                outcome_unknown=approval.outcome_unknown,
                expires_at=approval.expires_at,
                budget_id=approval.budget_id,
            )
        )

    def get_approval(self, workspace_id: str, approval_id: str) -> Approval | None:
        a = tables.approvals
        row = self._c.execute(
            select(a).where(a.c.workspace_id == workspace_id, a.c.id == approval_id)
        ).first()
        return None if row is None else _approval(row)

    def decide_approval(
        self, approval_id: str, status: ApprovalStatus, by: str, reason: str | None, now: datetime
    ) -> bool:
        """Record a decision on a pending approval; False when someone decided first."""
        a = tables.approvals
        result = self._c.execute(
            update(a)
            .where(a.c.id == approval_id, a.c.status == ApprovalStatus.PENDING.value)
            .values(status=status.value, decided_by=by, decided_at=now, reason=reason)
        )
        return int(result.rowcount) == 1

    def expired_approval_ids(self, now: datetime, limit: int) -> list[str]:
        """Pending approvals past ``expires_at`` (rows locked with ``SKIP LOCKED`` on
        PostgreSQL, so that several sweepers share the work)."""
        a = tables.approvals
        stmt = (
            select(a.c.id)
            .where(a.c.status == ApprovalStatus.PENDING.value, a.c.expires_at < now)
            .order_by(a.c.id)
            .limit(limit)
        )
        if self._postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        return [str(row.id) for row in self._c.execute(stmt)]

    def get_any_approval(self, approval_id: str) -> Approval | None:
        """An approval of any workspace (the sweeper acts as a system actor)."""
        a = tables.approvals
        row = self._c.execute(select(a).where(a.c.id == approval_id)).first()
        return None if row is None else _approval(row)

    def close_pending_approvals(
        self, run_id: str, status: ApprovalStatus, by: str, now: datetime
    ) -> list[str]:
        """Close the run's pending approvals (its run was cancelled, or gave up waiting) as
        ``status``; the ids of those closed."""
        a = tables.approvals
        pending = (a.c.run_id == run_id) & (a.c.status == ApprovalStatus.PENDING.value)
        ids = [str(row.id) for row in self._c.execute(select(a.c.id).where(pending))]
        if ids:
            self._c.execute(
                update(a)
                .where(pending, a.c.id.in_(ids))
                .values(status=status.value, decided_by=by, decided_at=now)
            )
        return ids

    def list_approvals(
        self, workspace_id: str, after: str | None, limit: int, where: ApprovalFilter
    ) -> list[Approval]:
        """Oldest first (``limit + 1`` rows)."""
        a = tables.approvals
        stmt = _approvals_where(select(a), workspace_id, where)
        if after is not None:
            stmt = stmt.where(a.c.id > after)
        rows = self._c.execute(stmt.order_by(a.c.id).limit(limit + 1)).all()
        return [_approval(r) for r in rows]

    def count_approvals(self, workspace_id: str, where: ApprovalFilter) -> int:
        """How many approvals ``list_approvals`` pages through under the same filter."""
        stmt = select(func.count()).select_from(tables.approvals)
        return int(self._c.execute(_approvals_where(stmt, workspace_id, where)).scalar_one())


def _run_by_id(in_workspace: bool, for_update: bool) -> Select[Any]:
    r = tables.runs
    stmt = select(r).where(r.c.id == bindparam("run_id"))
    if in_workspace:
        stmt = stmt.where(r.c.workspace_id == bindparam("workspace_id"))
    return stmt.with_for_update() if for_update else stmt


#: ``get``'s four statements, built once: the dispatcher reads a run twice a step, and
#: building a statement costs more CPU than SQLite takes to run it.
_RUN_BY_ID = {(w, u): _run_by_id(w, u) for w in (False, True) for u in (False, True)}


def _ownership(for_update: bool) -> Select[Any]:
    r = tables.runs
    columns = (r.c.status, r.c.claimed_by, r.c.next_seq, r.c.lease_expires_at)
    stmt = select(*columns).where(r.c.id == bindparam("run_id"))
    return stmt.with_for_update() if for_update else stmt


_OWNERSHIP = {u: _ownership(u) for u in (False, True)}

# Writes of a run, built once for the same reason; executed with the values as parameters
# (SQLAlchemy sets the columns the parameters name). The ``b_`` names are the WHERE's.
_INSERT_RUN = insert(tables.runs)
_SAVE_RUN = {
    False: update(tables.runs).where(tables.runs.c.id == bindparam("b_run_id")),
    True: update(tables.runs).where(
        tables.runs.c.id == bindparam("b_run_id"),
        tables.runs.c.status == bindparam("b_expect_status"),
    ),
}
_EXTEND_LEASE = update(tables.runs).where(tables.runs.c.id == bindparam("b_run_id"))


def _step_guard(statement: Any, guard: bool) -> Any:
    """``statement`` (an update of the run ``b_run_id``), with ``guard``: only while the row
    says running, claimed by ``b_claimed_by``, at event ``b_next_seq``."""
    r = tables.runs
    statement = statement.where(r.c.id == bindparam("b_run_id"))
    if guard:
        statement = statement.where(
            r.c.status == bindparam("b_status"),
            r.c.claimed_by == bindparam("b_claimed_by"),
            r.c.next_seq == bindparam("b_next_seq"),
        )
    return statement


#: ``save_step``'s update where it is one statement and the events another (SQLite); without
#: the guard, it is ``save``'s.
_SAVE_STEP = {False: _SAVE_RUN[False], True: _step_guard(update(tables.runs), True)}


@functools.cache  # a few per process: the columns a step sets, its number of events
def _step_statement(columns: frozenset[str], events: int, guard: bool) -> Any:
    """PostgreSQL: ``save_step`` in one statement. The run's row is updated (``s_<column>``
    parameters) in a data-modifying CTE that returns it only when written; the events
    (``e_seq__<i>``, ``e_type__<i>``, ``e_data__<i>``, all at ``e_at``) are inserted from
    that CTE, so none is when the guard did not hold (the rows it returns say)."""
    r = tables.runs
    update_run = _step_guard(update(r), guard).values(
        {column: bindparam(f"s_{column}", type_=r.c[column].type) for column in sorted(columns)}
    )
    return _events_from(update_run.returning(r.c.id, r.c.workspace_id).cte("saved"), events)


@functools.cache  # one per number of first events
def _add_statement(events: int) -> Any:
    """PostgreSQL: ``add`` in one statement: the run inserted (``r_<column>`` parameters) in
    a data-modifying CTE, its first events (as ``_step_statement``'s) inserted from it."""
    r = tables.runs
    values = {c.name: bindparam(f"r_{c.name}", type_=c.type) for c in r.columns}
    added = insert(r).values(values).returning(r.c.id, r.c.workspace_id).cte("added")
    return _events_from(added, events)


def _events_from(run: Any, events: int) -> Any:
    """An insert of ``events`` run events (``e_seq__<i>``, ``e_type__<i>``, ``e_data__<i>``,
    all at ``e_at``) for the run the CTE ``run`` returns (none if it returns none),
    returning their ``seq``: SQLAlchemy's path (taken while statements are listened to)
    reports no row count for a statement whose CTE returns rows."""
    e = tables.run_events
    rows = [
        select(
            run.c.id,
            bindparam(f"e_seq__{i}", type_=e.c.seq.type),
            run.c.workspace_id,
            bindparam("e_at", type_=e.c.at.type),
            bindparam(f"e_type__{i}", type_=e.c.type.type),
            bindparam(f"e_data__{i}", type_=e.c.data.type),
        )
        for i in range(events)
    ]
    source = rows[0] if events == 1 else union_all(*rows)
    columns = ["run_id", "seq", "workspace_id", "at", "type", "data"]
    return insert(e).from_select(columns, source).returning(e.c.seq)


def _claimable(postgres: bool) -> Select[Any]:
    r = tables.runs
    stmt = (
        select(r)
        .where(
            text(tables.UNFINISHED_RUNS),  # the partial index ix_runs_unfinished
            or_(
                r.c.status == RunStatus.QUEUED.value,
                (r.c.status == RunStatus.RUNNING.value) & (r.c.lease_expires_at < bindparam("now")),
            ),
        )
        .order_by(r.c.id)
        .limit(1)
    )
    return stmt.with_for_update(skip_locked=True) if postgres else stmt


#: ``claimable``'s statement per dialect (PostgreSQL skips locked rows), built once: every
#: worker poll runs it.
_CLAIMABLE = {postgres: _claimable(postgres) for postgres in (False, True)}


def _runs_where(stmt: Select[Any], workspace_id: str, where: RunFilter) -> Select[Any]:
    r = tables.runs
    stmt = stmt.where(r.c.workspace_id == workspace_id)
    for column, value in (
        (r.c.member_id, where.member_id),
        (r.c.crew_id, where.crew_id),
        (r.c.status, None if where.status is None else where.status.value),
        (r.c.origin, None if where.origin is None else where.origin.value),
        (r.c.parent_run_id, where.parent_run_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if where.created_after is not None:
        stmt = stmt.where(r.c.created_at >= where.created_after)
    if where.created_before is not None:
        stmt = stmt.where(r.c.created_at < where.created_before)
    return stmt


def _approvals_where(stmt: Select[Any], workspace_id: str, where: ApprovalFilter) -> Select[Any]:
    a = tables.approvals
    stmt = stmt.where(a.c.workspace_id == workspace_id)
    for column, value in (
        (a.c.status, None if where.status is None else where.status.value),
        (a.c.run_id, where.run_id),
        (a.c.member_id, where.member_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt


class RunsTx(MembersTx, BudgetsTx, Protocol):
    """What the run use cases and the dispatcher need of a unit of work."""

    runs: RunRepository
    cost: CostLedger
    notes: NoteRepository


def _written_values(run: Run, *, lease: bool, stored_state: RunState | None) -> dict[str, Any]:
    """The columns a save of ``run`` writes: its mutable ones, without the lease unless
    ``lease`` (or the run is no longer running), without the state when it is
    ``stored_state`` (the one stored: the column is large)."""
    values = _run_values(run)
    for fixed in _FIXED_COLUMNS:
        del values[fixed]
    if not lease and run.status is RunStatus.RUNNING:
        del values["lease_expires_at"]
    if stored_state == run.state:
        del values["state"]
    return values


def _event_params(run: Run, events: Sequence[EventDraft], now: datetime) -> dict[str, Any]:
    """The parameters of ``_events_from``'s insert: ``events`` numbered from ``run.next_seq``."""
    params: dict[str, Any] = {"e_at": now}
    for offset, (event_type, data) in enumerate(events):
        params[f"e_seq__{offset}"] = run.next_seq + offset
        params[f"e_type__{offset}"] = event_type
        params[f"e_data__{offset}"] = data
    return params


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
        "state": run.state.to_json(),
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
        "deadline_at": run.deadline_at,
        "traceparent": run.trace_context,
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
        state=RunState.from_json(row.state),
        created_by=row.created_by,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        started_at=utc_or_none(row.started_at),
        finished_at=utc_or_none(row.finished_at),
        claimed_by=row.claimed_by,
        lease_expires_at=utc_or_none(row.lease_expires_at),
        attempts=row.attempts,
        next_seq=row.next_seq,
        tokens_in=row.tokens_in,
        tokens_out=row.tokens_out,
        cost_units=float(row.cost_units),
        deadline_at=utc_or_none(row.deadline_at),
        trace_context=row.traceparent,
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
        decided_at=utc_or_none(row.decided_at),
        created_at=utc(row.created_at),
        outcome_unknown=bool(row.outcome_unknown),
        expires_at=utc_or_none(row.expires_at),
        budget_id=row.budget_id,
    )


# Built once: a statement built per call pays SQLAlchemy's cache key each time (the events
# of every run step are inserted here).
_INSERT_RUN_EVENTS = insert(tables.run_events)
