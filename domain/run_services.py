"""Use cases of the run vertical: start runs, read them, decide approvals, read cost.

Same rules as ``domain.services``: one unit of work per use case, role checked first, signals
recorded in the unit of work (stored with the commit, published after it).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from domain.compiler import compile_definition
from domain.engine import append_events, new_run
from domain.errors import (
    ApprovalAlreadyDecided,
    IdempotencyKeyReused,
    InputSchemaMismatch,
    NotFound,
    NothingToRun,
)
from domain.input_schema import input_problems, nul_pointer
from domain.model import (
    Actor,
    Approval,
    ApprovalStatus,
    MemberCost,
    Page,
    PageRequest,
    Role,
    Run,
    RunEvent,
    RunOrigin,
    RunStatus,
    page_of,
)
from domain.runtime import Runtime
from domain.signals import Signal, run_changed


def _now() -> datetime:
    return datetime.now(UTC)


def _request_hash(member_id: str, run_input: dict[str, Any], dry_run: bool) -> str:
    canonical = json.dumps(
        {"member_id": member_id, "input": run_input, "dry_run": dry_run},
        sort_keys=True,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _check_input(program: dict[str, Any], run_input: dict[str, Any]) -> None:
    nul_at = nul_pointer(run_input)
    if nul_at is not None:  # unstorable on PostgreSQL, whatever the input schema says
        raise InputSchemaMismatch(
            [
                {
                    "pointer": "/input" + nul_at,
                    "reason": "nul",
                    "message": "Text may not contain NUL characters (U+0000).",
                }
            ]
        )
    schema = program.get("input_schema")
    if isinstance(schema, dict):
        problems = input_problems(schema, run_input)
        if problems:
            raise InputSchemaMismatch(problems)


def start_run(
    rt: Runtime,
    actor: Actor,
    member_id: str,
    run_input: dict[str, Any],
    *,
    dry_run: bool = False,
    idempotency_key: str | None = None,
) -> tuple[Run, bool]:
    """Queue a manual run of the member's active version (or a dry run of its draft).

    Returns the run and whether it is a replay of an earlier request with the same key.

    :raises PermissionDenied: the actor is below operator.
    :raises NotFound: no such member.
    :raises NothingToRun: no published version (no draft, for a dry run).
    :raises InputSchemaMismatch: the input breaks the member's input schema.
    :raises IdempotencyKeyReused: the key was used with a different request.
    """
    actor.require(Role.OPERATOR)
    request_hash = _request_hash(member_id, run_input, dry_run)
    now = _now()
    replay_of: str | None = None
    with rt.uow(write=True) as tx:
        if idempotency_key is not None:
            earlier = tx.runs.find_idempotency_key(actor.workspace_id, idempotency_key)
            if earlier is not None:
                if earlier[0] != request_hash:
                    raise IdempotencyKeyReused(idempotency_key)
                original = tx.runs.get_run(actor.workspace_id, earlier[1])
                assert original is not None
                return original, True
        member = tx.repo.get_member(actor.workspace_id, member_id)
        if member is None:
            raise NotFound("member", member_id)
        number = member.draft_version_number if dry_run else member.active_version_number
        version = (
            None if number is None else tx.repo.get_version(actor.workspace_id, member_id, number)
        )
        if version is None:
            raise NothingToRun(member_id, dry_run)
        program = compile_definition(version.definition).program if dry_run else version.program
        assert program is not None
        _check_input(program, run_input)
        run = new_run(
            workspace_id=actor.workspace_id,
            member_id=member.id,
            crew_id=member.crew_id,
            version_id=version.id,
            version_number=version.number,
            program=program,
            run_input=run_input,
            origin=RunOrigin.MANUAL,
            dry_run=dry_run,
            created_by=actor.subject,
            parent_run_id=None,
            depth=0,
            now=now,
        )
        tx.runs.add_run(run)
        seq = append_events(
            tx, run, [("run.queued", {"origin": "manual", "dry_run": dry_run})], now
        )
        tx.runs.update_run(run.id, {"next_seq": seq})
        if idempotency_key is not None:
            try:
                tx.runs.add_idempotency_key(
                    actor.workspace_id, idempotency_key, request_hash, run.id, now
                )
            except IdempotencyKeyReused:
                # A concurrent request with the same key committed first: replay its run if
                # it was the same request (ours is rolled back), else the key is reused.
                winner = tx.runs.find_idempotency_key(actor.workspace_id, idempotency_key)
                if winner is None or winner[0] != request_hash:
                    raise
                replay_of = winner[1]
        if replay_of is None:
            tx.record(run_changed(run.workspace_id, run.id, RunStatus.QUEUED.value))
            tx.commit()
    if replay_of is not None:
        # Read outside the writing transaction: a row lock on the run here could deadlock
        # with the worker executing it (which waits for our lock on the member).
        with rt.uow() as reader:
            original = reader.runs.get_run(actor.workspace_id, replay_of)
        assert original is not None
        return original, True
    return run, False


def get_run(rt: Runtime, actor: Actor, run_id: str) -> Run:
    """:raises NotFound: no such run in the actor's workspace."""
    actor.require(Role.VIEWER)
    with rt.uow() as tx:
        run = tx.runs.get_run(actor.workspace_id, run_id)
    if run is None:
        raise NotFound("run", run_id)
    return run


def list_runs(rt: Runtime, actor: Actor, page: PageRequest, filters: dict[str, Any]) -> Page[Run]:
    """List runs, newest first; the cursor is an upper bound."""
    actor.require(Role.VIEWER)
    with rt.uow() as tx:
        rows = tx.runs.list_runs(actor.workspace_id, page.cursor, page.limit, filters)
    return page_of(rows, page, lambda row: row.id)


def list_run_events(
    rt: Runtime, actor: Actor, run_id: str, after_seq: int, limit: int
) -> tuple[list[RunEvent], int | None]:
    """Events after ``after_seq`` in order, and the ``after_seq`` of the next page (or None).

    :raises NotFound: no such run.
    """
    actor.require(Role.VIEWER)
    with rt.uow() as tx:
        if tx.runs.get_run(actor.workspace_id, run_id) is None:
            raise NotFound("run", run_id)
        events = tx.runs.list_events(actor.workspace_id, run_id, after_seq, limit)
    if len(events) > limit:
        events = events[:limit]
        return events, events[-1].seq
    return events, None


def list_approvals(
    rt: Runtime, actor: Actor, page: PageRequest, filters: dict[str, Any]
) -> Page[Approval]:
    """List approvals, oldest first (the pending queue with ``status=pending``)."""
    actor.require(Role.VIEWER)
    with rt.uow() as tx:
        rows = tx.runs.list_approvals(actor.workspace_id, page.cursor, page.limit, filters)
    return page_of(rows, page, lambda row: row.id)


def get_approval(rt: Runtime, actor: Actor, approval_id: str) -> Approval:
    """:raises NotFound: no such approval."""
    actor.require(Role.VIEWER)
    with rt.uow() as tx:
        approval = tx.runs.get_approval(actor.workspace_id, approval_id)
    if approval is None:
        raise NotFound("approval", approval_id)
    return approval


def decide_approval(
    rt: Runtime, actor: Actor, approval_id: str, *, approve: bool, reason: str | None = None
) -> Approval:
    """Approve (the run resumes, exactly once) or reject (the run fails with the reason).

    :raises PermissionDenied: the actor is below operator.
    :raises NotFound: no such approval.
    :raises ApprovalAlreadyDecided: it was decided before, or a concurrent decision won.
    """
    actor.require(Role.OPERATOR)
    now = _now()
    status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
    with rt.uow(write=True) as tx:
        approval = tx.runs.get_approval(actor.workspace_id, approval_id)
        if approval is None:
            raise NotFound("approval", approval_id)
        if approval.status is not ApprovalStatus.PENDING:
            raise ApprovalAlreadyDecided(approval_id, approval.status.value)
        if tx.runs.decide_approval(approval_id, status, actor.subject, reason, now) != 1:
            raise ApprovalAlreadyDecided(approval_id, "concurrently")
        run = tx.runs.get_run(actor.workspace_id, approval.run_id)
        assert run is not None
        decided = {"approval_id": approval_id, "decided_by": actor.subject}
        if approve:
            state = dict(run.state)
            state["approved"] = [*state.get("approved", []), approval.call_id]
            seq = append_events(tx, run, [("approval.approved", decided)], now)
            values: dict[str, Any] = {"status": RunStatus.QUEUED.value, "state": state}
        else:
            message = f"Approval of '{approval.tool}' was rejected: {reason or 'no reason given'}"
            seq = append_events(
                tx,
                run,
                [
                    ("approval.rejected", {**decided, "reason": reason}),
                    ("run.failed", {"code": "ApprovalRejected", "message": message}),
                ],
                now,
            )
            values = {
                "status": RunStatus.FAILED.value,
                "error": {"code": "ApprovalRejected", "message": message},
                "finished_at": now,
            }
        values.update(next_seq=seq, updated_at=now)
        tx.runs.update_run(run.id, values, expect_status=RunStatus.WAITING_APPROVAL.value)
        result = tx.runs.get_approval(actor.workspace_id, approval_id)
        tx.record(run_changed(run.workspace_id, run.id, str(values["status"])))
        tx.record(
            Signal(
                run.workspace_id,
                "approval.decided",
                {"approval_id": approval_id, "run_id": run.id, "status": status.value},
            )
        )
        tx.commit()
    assert result is not None
    return result


def cost_summary(rt: Runtime, actor: Actor, start: datetime, end: datetime) -> list[MemberCost]:
    """Run counts and cost units per member for runs created in ``[start, end)``."""
    actor.require(Role.VIEWER)
    with rt.uow() as tx:
        return tx.runs.cost_by_member(actor.workspace_id, start, end)


def check_retryable(rt: Runtime, actor: Actor, run_id: str) -> Run:
    """Gate for the deferred retry operation: the role and the run must check out.

    :raises PermissionDenied: the actor is below operator.
    :raises NotFound: no such run.
    """
    actor.require(Role.OPERATOR)
    return get_run(rt, actor, run_id)
