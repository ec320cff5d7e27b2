"""Use cases of runs and approvals: start runs, read them and their timelines, decide approvals.

One unit of work per use case, role checked first, signals recorded in the unit of work (stored
with the commit, published after it). Executing runs is the dispatcher's (``dispatcher.py``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from domain.kernel.actor import Actor, Role
from domain.kernel.clock import Clock
from domain.kernel.errors import NotFound
from domain.kernel.paging import Page, PageRequest, page_of
from domain.kernel.signals import Signal
from domain.kernel.unit_of_work import Store
from domain.runs.errors import (
    ApprovalAlreadyDecided,
    IdempotencyKeyReused,
    NothingToRun,
    RunFinished,
)
from domain.runs.model import (
    Approval,
    ApprovalFilter,
    ApprovalStatus,
    Run,
    RunEvent,
    RunFilter,
    RunOrigin,
    RunStatus,
)
from domain.runs.repository import RunsTx
from domain.runs.start import RunRequest, queue_run


class Runs:
    """Starting and reading runs, and the approvals that pause them."""

    def __init__(self, store: Store[RunsTx], clock: Clock) -> None:
        self._store = store
        self._clock = clock

    # -- runs ----------------------------------------------------------------------------

    def start_run(
        self,
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
        now = self._clock.now()
        replay_of: str | None = None
        with self._store(write=True) as tx:
            if idempotency_key is not None:
                earlier = tx.runs.find_idempotency_key(actor.workspace_id, idempotency_key)
                if earlier is not None:
                    if earlier[0] != request_hash:
                        raise IdempotencyKeyReused(idempotency_key)
                    original = tx.runs.get(actor.workspace_id, earlier[1])
                    assert original is not None
                    return original, True
            request = RunRequest(
                member_id=member_id,
                input=run_input,
                origin=RunOrigin.MANUAL,
                created_by=actor.subject,
                dry_run=dry_run,
            )
            try:
                run = queue_run(tx, actor.workspace_id, request, now)
            except NothingToRun:
                # Whether the member exists is asked only here: queue_run read it already.
                if tx.members.get_member(actor.workspace_id, member_id) is None:
                    raise NotFound("member", member_id) from None
                raise
            tx.audit.append(
                actor,
                "run.started",
                "run",
                run.id,
                {"member_id": member_id, "dry_run": dry_run},
                now,
            )
            if idempotency_key is not None:
                try:
                    tx.runs.add_idempotency_key(
                        actor.workspace_id, idempotency_key, request_hash, run.id, now
                    )
                except IdempotencyKeyReused:
                    # A concurrent request with the same key committed first: replay its run
                    # if it was the same request (ours is rolled back), else the key is reused.
                    winner = tx.runs.find_idempotency_key(actor.workspace_id, idempotency_key)
                    if winner is None or winner[0] != request_hash:
                        raise
                    replay_of = winner[1]
            if replay_of is None:
                tx.commit()
        if replay_of is not None:
            # Read outside the writing transaction: a row lock on the run here could deadlock
            # with the worker executing it (which waits for our lock on the member).
            with self._store() as reader:
                original = reader.runs.get(actor.workspace_id, replay_of)
            assert original is not None
            return original, True
        return run, False

    def get_run(self, actor: Actor, run_id: str) -> Run:
        """:raises NotFound: no such run in the actor's workspace."""
        actor.require(Role.VIEWER)
        with self._store() as tx:
            run = tx.runs.get(actor.workspace_id, run_id)
        if run is None:
            raise NotFound("run", run_id)
        return run

    def list_runs(self, actor: Actor, page: PageRequest, where: RunFilter) -> Page[Run]:
        """List runs, newest first; the cursor is an upper bound."""
        actor.require(Role.VIEWER)
        with self._store() as tx:
            rows = tx.runs.list_runs(actor.workspace_id, page.cursor, page.limit, where)
            total = tx.runs.count_runs(actor.workspace_id, where) if page.include_total else None
        return page_of(rows, page, lambda row: row.id, total)

    def list_run_events(
        self, actor: Actor, run_id: str, after_seq: int, limit: int
    ) -> tuple[list[RunEvent], int | None]:
        """Events after ``after_seq`` in order, and the ``after_seq`` of the next page (or None).

        :raises NotFound: no such run.
        """
        actor.require(Role.VIEWER)
        with self._store() as tx:
            if tx.runs.get(actor.workspace_id, run_id) is None:
                raise NotFound("run", run_id)
            events = tx.runs.list_events(actor.workspace_id, run_id, after_seq, limit)
        if len(events) > limit:
            events = events[:limit]
            return events, events[-1].seq
        return events, None

    def cancel_run(self, actor: Actor, run_id: str) -> Run:
        """Cancel a run: a queued or waiting run is ``cancelled`` at once (its pending
        approval too); a running run is ``cancelled`` now and its worker stops at the next
        step boundary, starting no further tool call.

        :raises PermissionDenied: the actor is below operator.
        :raises NotFound: no such run.
        :raises RunFinished: the run had already finished (cancelled included).
        """
        actor.require(Role.OPERATOR)
        now = self._clock.now()
        with self._store(write=True) as tx:
            # The approvals first, then the run: the order a decision locks them in.
            closed = tx.runs.close_pending_approvals(
                run_id, ApprovalStatus.CANCELLED, actor.subject, now
            )
            run = tx.runs.get(actor.workspace_id, run_id)
            if run is None:
                raise NotFound("run", run_id)  # (rolled back: nothing was closed)
            if run.status.finished:
                raise RunFinished(run_id, run.status.value)
            cancelled = {"by": actor.subject, "from": run.status.value}
            run = tx.runs.append_events(run, [("run.cancelled", cancelled)], now)
            previous = run.status
            run = run.cancelled(now)
            if not tx.runs.save(run, expect_status=previous):
                raise RunFinished(run_id, "concurrently")  # pragma: no cover - row locked
            tx.audit.append(actor, "run.cancelled", "run", run_id, cancelled, now)
            tx.record(run.changed_signal())
            for approval_id in closed:
                tx.record(_decided_signal(run, approval_id, ApprovalStatus.CANCELLED))
            tx.commit()
        return run

    def check_retryable(self, actor: Actor, run_id: str) -> Run:
        """Gate for the deferred retry operation: the role and the run must check out.

        :raises PermissionDenied: the actor is below operator.
        :raises NotFound: no such run.
        """
        actor.require(Role.OPERATOR)
        return self.get_run(actor, run_id)

    # -- approvals -----------------------------------------------------------------------

    def list_approvals(
        self, actor: Actor, page: PageRequest, where: ApprovalFilter
    ) -> Page[Approval]:
        """List approvals, oldest first (the pending queue by default)."""
        actor.require(Role.VIEWER)
        with self._store() as tx:
            rows = tx.runs.list_approvals(actor.workspace_id, page.cursor, page.limit, where)
            total = (
                tx.runs.count_approvals(actor.workspace_id, where) if page.include_total else None
            )
        return page_of(rows, page, lambda row: row.id, total)

    def get_approval(self, actor: Actor, approval_id: str) -> Approval:
        """:raises NotFound: no such approval."""
        actor.require(Role.VIEWER)
        with self._store() as tx:
            approval = tx.runs.get_approval(actor.workspace_id, approval_id)
        if approval is None:
            raise NotFound("approval", approval_id)
        return approval

    def approve_approval(self, actor: Actor, approval_id: str) -> Approval:
        """Approve: the run is queued again and resumes with this call, exactly once.

        :raises PermissionDenied: the actor is below operator.
        :raises NotFound: no such approval.
        :raises ApprovalAlreadyDecided: it was decided before, or a concurrent decision won.
        """
        return self._decide(actor, approval_id, ApprovalStatus.APPROVED, None)

    def reject_approval(self, actor: Actor, approval_id: str, reason: str) -> Approval:
        """Reject: the run fails with ``ApprovalRejected`` and the reason.

        :raises PermissionDenied: the actor is below operator.
        :raises NotFound: no such approval.
        :raises ApprovalAlreadyDecided: it was decided before, or a concurrent decision won.
        """
        return self._decide(actor, approval_id, ApprovalStatus.REJECTED, reason)

    def _decide(
        self, actor: Actor, approval_id: str, status: ApprovalStatus, reason: str | None
    ) -> Approval:
        actor.require(Role.OPERATOR)
        now = self._clock.now()
        with self._store(write=True) as tx:
            approval = tx.runs.get_approval(actor.workspace_id, approval_id)
            if approval is None:
                raise NotFound("approval", approval_id)
            if approval.status is not ApprovalStatus.PENDING:
                raise ApprovalAlreadyDecided(approval_id, approval.status.value)
            if approval.expires_at is not None and now >= approval.expires_at:
                raise ApprovalAlreadyDecided(approval_id, "expired")  # the sweep closes it
            if not tx.runs.decide_approval(approval_id, status, actor.subject, reason, now):
                raise ApprovalAlreadyDecided(approval_id, "concurrently")
            run = tx.runs.get(actor.workspace_id, approval.run_id)
            assert run is not None
            decided = {"approval_id": approval_id, "decided_by": actor.subject}
            if status is ApprovalStatus.APPROVED:
                run = tx.runs.append_events(run, [("approval.approved", decided)], now)
                run = run.approved(approval.call_id, now)
            else:
                message = (
                    f"Approval of '{approval.tool}' was rejected: {reason or 'no reason given'}"
                )
                run = tx.runs.append_events(
                    run,
                    [
                        ("approval.rejected", {**decided, "reason": reason}),
                        ("run.failed", {"code": "ApprovalRejected", "message": message}),
                    ],
                    now,
                )
                run = run.failed("ApprovalRejected", message, now)
            tx.runs.save(run, expect_status=RunStatus.WAITING_APPROVAL)
            tx.audit.append(
                actor,
                f"approval.{status.value}",
                "approval",
                approval_id,
                {"run_id": run.id, "tool": approval.tool, "reason": reason},
                now,
            )
            result = tx.runs.get_approval(actor.workspace_id, approval_id)
            tx.record(run.changed_signal())
            tx.record(_decided_signal(run, approval_id, status))
            tx.commit()
        assert result is not None
        return result


def _decided_signal(run: Run, approval_id: str, status: ApprovalStatus) -> Signal:
    data = {"approval_id": approval_id, "run_id": run.id, "status": status.value}
    return Signal(run.workspace_id, "approval.decided", data)


def _request_hash(member_id: str, run_input: dict[str, Any], dry_run: bool) -> str:
    canonical = json.dumps(
        {"member_id": member_id, "input": run_input, "dry_run": dry_run},
        sort_keys=True,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
