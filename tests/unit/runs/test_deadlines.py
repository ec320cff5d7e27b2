"""Run deadlines and approval expiry over the in-memory store, with a clock the test moves:
the sweep fails overdue runs (``RunTimedOut``) and expires undecided approvals
(``ApprovalExpired``, or a reject where the definition says so)."""

from __future__ import annotations

import pytest

from domain.kernel import Role
from domain.members import Definition, EffectClass, Members, ToolSpec
from domain.runs import ApprovalAlreadyDecided, ApprovalStatus, Runs, RunStatus
from tests.unit.conftest import actor
from tests.unit.runs.test_dispatcher import POST_APPROVED, published, timeline, worker

OPERATOR = actor(Role.OPERATOR)


def posting(**limits) -> Definition:
    return Definition(
        objective="Post the input.",
        tools=(ToolSpec("http_post", EffectClass.EXTERNAL_WRITE),),
        **limits,
    )


@pytest.fixture
def members(store, clock) -> Members:
    return Members(store, clock)


@pytest.fixture
def runs(store, clock) -> Runs:
    return Runs(store, clock)


class TestApprovalExpiry:
    def test_an_undecided_approval_expires_and_its_run_fails(self, members, runs, store, clock):
        run, _ = runs.start_run(OPERATOR, published(members, posting()), {"url": "h"})
        w = worker(store, clock, approval_timeout_seconds=60)
        assert w.run_next()
        [approval] = store.state.approvals.values()
        assert (approval.expires_at - approval.created_at).total_seconds() == 60
        clock.advance(59)
        assert w.sweep() == 0
        clock.advance(2)
        assert w.sweep() == 1
        assert store.state.approvals[approval.id].status is ApprovalStatus.EXPIRED
        failed = runs.get_run(OPERATOR, run.id)
        assert (failed.status, failed.error["code"]) == (RunStatus.FAILED, "ApprovalExpired")
        assert timeline(store, run.id)[-2:] == ["approval.expired", "run.failed"]
        with pytest.raises(ApprovalAlreadyDecided):
            runs.approve_approval(OPERATOR, approval.id)
        assert w.sweep() == 0  # nothing left: a second sweeper finds nothing either

    def test_the_definition_s_timeout_and_reject_policy_apply(self, members, runs, store, clock):
        definition = posting(approval_timeout_seconds=5, on_approval_timeout="reject")
        run, _ = runs.start_run(OPERATOR, published(members, definition), {"url": "h"})
        w = worker(store, clock)
        assert w.run_next()
        clock.advance(6)
        assert w.sweep() == 1
        failed = runs.get_run(OPERATOR, run.id)
        assert failed.error["code"] == "ApprovalRejected"
        assert "expired" in failed.error["message"]

    def test_deciding_past_expiry_but_before_the_sweep_answers_conflict(
        self, members, runs, store, clock
    ):
        runs.start_run(OPERATOR, published(members, posting(approval_timeout_seconds=5)), {})
        assert worker(store, clock).run_next()
        [approval] = store.state.approvals.values()
        clock.advance(5)
        with pytest.raises(ApprovalAlreadyDecided, match="expired"):
            runs.reject_approval(OPERATOR, approval.id, "too late")


class TestRunDeadline:
    def test_a_run_blocked_past_its_deadline_is_failed_by_the_sweep(
        self, members, runs, store, clock
    ):
        run, _ = runs.start_run(OPERATOR, published(members), {})
        w = worker(store, clock, max_run_seconds=10, lease_seconds=60)
        assert w.claim() == run.id  # then its worker hangs in a model or tool call
        assert runs.get_run(OPERATOR, run.id).deadline_at is not None
        clock.advance(11)
        assert worker(store, clock, name="sweeper").sweep() == 1
        failed = runs.get_run(OPERATOR, run.id)
        assert (failed.status, failed.error["code"]) == (RunStatus.FAILED, "RunTimedOut")
        w.execute(run.id)  # the call returns: nothing more is written
        assert timeline(store, run.id)[-1] == "run.failed"

    def test_a_worker_stops_at_the_step_boundary_past_the_deadline(
        self, members, runs, store, clock
    ):
        run, _ = runs.start_run(OPERATOR, published(members, posting(max_run_seconds=3)), {})
        w = worker(store, clock)
        assert w.claim() == run.id
        clock.advance(4)
        w.execute(run.id)
        failed = runs.get_run(OPERATOR, run.id)
        assert failed.error == {
            "code": "RunTimedOut",
            "message": "The run passed its deadline of 3s.",
        }

    def test_waiting_for_a_human_does_not_count(self, members, runs, store, clock):
        definition = posting(max_run_seconds=10, approval_timeout_seconds=3600)
        run, _ = runs.start_run(OPERATOR, published(members, definition), {"url": "h"})
        w = worker(store, clock)
        assert w.run_next()
        deadline = runs.get_run(OPERATOR, run.id).deadline_at
        clock.advance(600)  # ten minutes waiting for the approval
        assert w.sweep() == 0
        [approval] = store.state.approvals.values()
        runs.approve_approval(OPERATOR, approval.id)
        resumed = runs.get_run(OPERATOR, run.id)
        assert (resumed.deadline_at - deadline).total_seconds() == 600
        assert w.run_next()
        assert runs.get_run(OPERATOR, run.id).status is RunStatus.SUCCEEDED


def test_the_default_definition_is_unchanged_by_the_limits():
    assert "max_run_seconds" not in POST_APPROVED.to_json()
    limited = posting(max_run_seconds=5, approval_timeout_seconds=6, on_approval_timeout="fail")
    assert Definition.from_json(limited.to_json()) == limited
