"""Starting runs and deciding approvals, over an in-memory store (the dispatcher drives the
runs to their approvals with the offline model)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from domain.kernel import NotFound, PageRequest, PermissionDenied, Role
from domain.members import Definition, EffectClass, Members, ToolSpec
from domain.runs import (
    ApprovalAlreadyDecided,
    ApprovalFilter,
    ApprovalStatus,
    Dispatcher,
    IdempotencyKeyReused,
    InputSchemaMismatch,
    NothingToRun,
    OfflineLanguageModel,
    RunOrigin,
    Runs,
    RunStatus,
)
from tests.support.domain import run_settings
from tests.unit.conftest import actor

NOTES = Definition(objective="Keep notes.", tools=(ToolSpec("notes_write", EffectClass.INTERNAL),))
POSTER = Definition(
    objective="Post the input.", tools=(ToolSpec("http_post", EffectClass.EXTERNAL_WRITE),)
)
AUTHOR, OPERATOR = actor(Role.AUTHOR), actor(Role.OPERATOR)
_NAMES = itertools.count(1)


class RecordingHttp:
    """The HTTP port of the tools: records what a run sent, answers 200."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []

    def get(self, url: str, *, idempotency_key: str | None = None) -> dict[str, Any]:
        return {"status": 200, "url": url}

    def post(self, url: str, body: Any, *, idempotency_key: str | None = None) -> dict[str, Any]:
        self.posts.append((url, body))
        return {"status": 200, "url": url}


@pytest.fixture
def members(store, clock) -> Members:
    return Members(store, clock)


@pytest.fixture
def runs(store, clock) -> Runs:
    return Runs(store, clock)


@pytest.fixture
def http() -> RecordingHttp:
    return RecordingHttp()


@pytest.fixture
def worker(store, clock, http) -> Dispatcher:
    return Dispatcher(store, clock, OfflineLanguageModel(), http, run_settings(), "unit-worker")


def member(members: Members, definition: Definition = NOTES, *, publish: bool = True) -> str:
    n = next(_NAMES)
    crew = members.create_crew(AUTHOR, f"Crew {n}")
    created = members.create_member(
        AUTHOR, crew_id=crew.id, name=f"Member {n}", definition=definition
    )
    if publish:
        members.publish_member(AUTHOR, created.id)
    return created.id


class TestStartRun:
    def test_a_run_of_the_active_version_is_queued_and_announced(self, members, runs, store):
        member_id = member(members)
        run, replayed = runs.start_run(OPERATOR, member_id, {"ticket": 42})
        assert (run.status, run.origin, run.version_number, replayed) == (
            RunStatus.QUEUED,
            RunOrigin.MANUAL,
            1,
            False,
        )
        assert [e.type for e in store.state.events[run.id]] == ["run.queued"]
        assert store.signals[-1].data == {"run_id": run.id, "status": "queued"}

    def test_an_unpublished_member_has_nothing_to_run_but_can_be_dry_run(self, members, runs):
        member_id = member(members, publish=False)
        with pytest.raises(NothingToRun):
            runs.start_run(OPERATOR, member_id, {})
        dry, _ = runs.start_run(OPERATOR, member_id, {}, dry_run=True)
        assert (dry.dry_run, dry.version_number) == (True, 1)

    def test_an_unknown_member_is_not_found(self, runs):
        with pytest.raises(NotFound):
            runs.start_run(OPERATOR, "mem_nope", {})

    def test_a_viewer_cannot_start_a_run(self, members, runs):
        with pytest.raises(PermissionDenied):
            runs.start_run(actor(Role.VIEWER), member(members), {})

    def test_the_input_is_checked_against_the_input_schema_and_nothing_is_queued(
        self, members, runs, store
    ):
        schema = {"type": "object", "required": ["ticket"]}
        strict = Definition(objective="x", tools=NOTES.tools, input_schema=schema)
        member_id = member(members, strict)
        with pytest.raises(InputSchemaMismatch) as caught:
            runs.start_run(OPERATOR, member_id, {"other": 1})
        assert caught.value.problems[0]["reason"] == "required"
        with pytest.raises(InputSchemaMismatch):
            runs.start_run(OPERATOR, member_id, {"ticket": "a\x00b"})
        assert store.state.runs == {}
        assert runs.start_run(OPERATOR, member_id, {"ticket": 1})[0].status is RunStatus.QUEUED

    def test_the_same_idempotency_key_replays_the_run_and_a_new_body_is_refused(
        self, members, runs, store
    ):
        member_id = member(members)
        first, replayed = runs.start_run(OPERATOR, member_id, {"n": 1}, idempotency_key="k-1")
        again, replayed_again = runs.start_run(OPERATOR, member_id, {"n": 1}, idempotency_key="k-1")
        assert (again.id, replayed, replayed_again) == (first.id, False, True)
        with pytest.raises(IdempotencyKeyReused):
            runs.start_run(OPERATOR, member_id, {"n": 2}, idempotency_key="k-1")
        assert len(store.state.runs) == 1


class TestApprovals:
    def waiting(self, members, runs, worker):
        run, _ = runs.start_run(OPERATOR, member(members, POSTER), {"url": "http://x.test/"})
        assert worker.run_next()
        assert runs.get_run(OPERATOR, run.id).status is RunStatus.WAITING_APPROVAL
        [approval] = runs.list_approvals(OPERATOR, PageRequest(), ApprovalFilter()).items
        return run, approval

    def test_approving_requeues_the_run_and_the_approved_call_is_made_once(
        self, members, runs, worker, http
    ):
        run, approval = self.waiting(members, runs, worker)
        assert http.posts == []  # nothing was sent before the approval
        decided = runs.approve_approval(OPERATOR, approval.id)
        assert (decided.status, decided.decided_by) == (ApprovalStatus.APPROVED, "user-operator")
        assert runs.get_run(OPERATOR, run.id).status is RunStatus.QUEUED
        assert worker.run_next()
        assert runs.get_run(OPERATOR, run.id).status is RunStatus.SUCCEEDED
        assert http.posts == [("http://x.test/", {"url": "http://x.test/"})]

    def test_rejecting_fails_the_run_with_the_reason(self, members, runs, worker, http):
        run, approval = self.waiting(members, runs, worker)
        runs.reject_approval(OPERATOR, approval.id, "not today")
        failed = runs.get_run(OPERATOR, run.id)
        assert failed.status is RunStatus.FAILED
        assert failed.error["code"] == "ApprovalRejected"
        assert "not today" in failed.error["message"]
        assert not worker.run_next() and http.posts == []

    def test_a_second_decision_is_refused(self, members, runs, worker):
        _, approval = self.waiting(members, runs, worker)
        runs.approve_approval(OPERATOR, approval.id)
        with pytest.raises(ApprovalAlreadyDecided):
            runs.reject_approval(OPERATOR, approval.id, "too late")

    def test_a_viewer_cannot_decide(self, members, runs, worker):
        _, approval = self.waiting(members, runs, worker)
        with pytest.raises(PermissionDenied):
            runs.approve_approval(actor(Role.VIEWER), approval.id)
        assert runs.get_approval(OPERATOR, approval.id).status is ApprovalStatus.PENDING
