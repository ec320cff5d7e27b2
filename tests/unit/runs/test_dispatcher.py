"""The dispatcher's rules over an in-memory store, with a clock the test moves: steps,
handoffs (one path with every other origin), leases and recovery, the step limit."""

from __future__ import annotations

import itertools

import pytest

from domain.kernel import Role
from domain.members import Definition, EffectClass, Handoff, HandoffCondition, Members, ToolSpec
from domain.runs import Dispatcher, OfflineLanguageModel, Runs, RunStatus
from tests.support.domain import run_settings
from tests.unit.conftest import actor
from tests.unit.runs.test_use_cases import RecordingHttp

NOTES = Definition(
    objective="Keep notes.",
    tools=(
        ToolSpec("notes_write", EffectClass.INTERNAL),
        ToolSpec("notes_read", EffectClass.INTERNAL),
    ),
)
AUTHOR, OPERATOR = actor(Role.AUTHOR), actor(Role.OPERATOR)
_NAMES = itertools.count(1)


@pytest.fixture
def members(store, clock) -> Members:
    return Members(store, clock)


@pytest.fixture
def runs(store, clock) -> Runs:
    return Runs(store, clock)


def worker(store, clock, name: str = "w", **settings) -> Dispatcher:
    return Dispatcher(
        store, clock, OfflineLanguageModel(), RecordingHttp(), run_settings(**settings), name
    )


def published(members: Members, definition: Definition = NOTES) -> str:
    n = next(_NAMES)
    crew = members.create_crew(AUTHOR, f"Crew {n}")
    member = members.create_member(AUTHOR, crew_id=crew.id, name=f"M{n}", definition=definition)
    members.publish_member(AUTHOR, member.id)
    return member.id


def timeline(store, run_id: str) -> list[str]:
    return [e.type for e in store.state.events[run_id]]


class TestExecution:
    def test_a_run_goes_through_each_tool_and_succeeds_with_cost(self, members, runs, store, clock):
        run, _ = runs.start_run(OPERATOR, published(members), {"n": 1})
        assert worker(store, clock).run_next()
        done = runs.get_run(OPERATOR, run.id)
        assert done.status is RunStatus.SUCCEEDED and done.output["tool_calls"] == 2
        assert done.started_at == done.finished_at == clock.now()
        assert done.tokens_in > 0 and done.cost_units > 0
        assert timeline(store, run.id) == [
            "run.queued",
            "run.started",
            "model.replied",
            "tool.succeeded",
            "model.replied",
            "tool.succeeded",
            "model.replied",
            "run.succeeded",
        ]
        assert [s.data["status"] for s in store.signals if s.kind == "run.changed"][-2:] == [
            "running",
            "succeeded",
        ]

    def test_a_run_past_its_step_limit_fails(self, members, runs, store, clock):
        run, _ = runs.start_run(OPERATOR, published(members), {})
        assert worker(store, clock, max_steps=2).run_next()
        failed = runs.get_run(OPERATOR, run.id)
        assert (failed.status, failed.error["code"]) == (RunStatus.FAILED, "StepLimit")

    def test_nothing_claimable_is_no_work(self, store, clock):
        assert not worker(store, clock).run_next()


class TestHandoffs:
    def test_a_succeeded_run_starts_the_matching_handoff_as_a_child(
        self, members, runs, store, clock
    ):
        parent_member, child_member = published(members), published(members)
        members.replace_member_handoffs(
            AUTHOR, parent_member, [Handoff(child_member, HandoffCondition("route", "b"))]
        )
        parent, _ = runs.start_run(OPERATOR, parent_member, {"output": {"route": "b"}})
        w = worker(store, clock)
        assert w.run_next() and w.run_next()
        [child] = [r for r in store.state.runs.values() if r.parent_run_id == parent.id]
        assert (child.origin.value, child.depth, child.status) == (
            "handoff",
            1,
            RunStatus.SUCCEEDED,
        )
        assert child.created_by == f"run:{parent.id}"
        assert store.state.events[child.id][0].data == {
            "origin": "handoff",
            "parent_run_id": parent.id,
        }
        assert "handoff.started" in timeline(store, parent.id)

    def test_a_handoff_whose_condition_does_not_match_starts_nothing(
        self, members, runs, store, clock
    ):
        parent_member, child_member = published(members), published(members)
        members.replace_member_handoffs(
            AUTHOR, parent_member, [Handoff(child_member, HandoffCondition("route", "b"))]
        )
        runs.start_run(OPERATOR, parent_member, {"output": {"route": "a"}})
        assert worker(store, clock).run_next()
        assert len(store.state.runs) == 1

    def test_a_chain_stops_at_the_depth_cap(self, members, runs, store, clock):
        first, second = published(members), published(members)
        members.replace_member_handoffs(AUTHOR, first, [Handoff(second)])
        parent, _ = runs.start_run(OPERATOR, first, {})
        assert worker(store, clock, handoff_max_depth=0).run_next()
        assert len(store.state.runs) == 1
        skipped = [e for e in store.state.events[parent.id] if e.type == "handoff.skipped"]
        assert skipped[0].data == {"target_member_id": second, "reason": "depth_cap"}

    def test_a_target_whose_input_schema_refuses_the_output_is_skipped(
        self, members, runs, store, clock
    ):
        strict = Definition(
            objective="x", tools=NOTES.tools, input_schema={"type": "object", "required": ["id"]}
        )
        first, second = published(members), published(members, strict)
        members.replace_member_handoffs(AUTHOR, first, [Handoff(second)])
        parent, _ = runs.start_run(OPERATOR, first, {})
        assert worker(store, clock).run_next()
        [skipped] = [e for e in store.state.events[parent.id] if e.type == "handoff.skipped"]
        assert skipped.data["reason"] == "input_schema_mismatch"
        assert len(store.state.runs) == 1


class TestLeases:
    def test_a_claimed_run_is_not_claimed_again_until_its_lease_runs_out(
        self, members, runs, store, clock
    ):
        run, _ = runs.start_run(OPERATOR, published(members), {})
        a, b = worker(store, clock, "a"), worker(store, clock, "b")
        assert a.claim() == run.id
        clock.advance(a.settings.lease_seconds - 1)
        assert b.claim() is None
        clock.advance(2)
        assert b.claim() == run.id
        recovered = runs.get_run(OPERATOR, run.id)
        assert (recovered.claimed_by, recovered.attempts) == ("b", 2)
        assert timeline(store, run.id)[-1] == "run.recovered"

    def test_a_run_whose_worker_is_lost_too_often_fails(self, members, runs, store, clock):
        run, _ = runs.start_run(OPERATOR, published(members), {})
        w = worker(store, clock, max_attempts=2)
        for _ in range(2):
            assert w.claim() == run.id
            clock.advance(w.settings.lease_seconds + 1)
        assert w.claim() is None
        failed = runs.get_run(OPERATOR, run.id)
        assert (failed.status, failed.error["code"]) == (RunStatus.FAILED, "WorkerLost")

    def test_a_worker_that_lost_its_run_writes_nothing_over_the_new_owner(
        self, members, runs, store, clock
    ):
        run, _ = runs.start_run(OPERATOR, published(members), {})
        a, b = worker(store, clock, "a"), worker(store, clock, "b")
        assert a.claim() == run.id
        clock.advance(a.settings.lease_seconds + 1)
        assert b.claim() == run.id
        a.execute(run.id)  # a wakes up late: its run is no longer its own
        assert runs.get_run(OPERATOR, run.id).claimed_by == "b"
        assert "model.replied" not in timeline(store, run.id)
        b.execute(run.id)
        assert runs.get_run(OPERATOR, run.id).status is RunStatus.SUCCEEDED


class WorkerDied(BaseException):
    """The worker process dies in the middle of a call (nothing after it runs)."""


class DyingHttp(RecordingHttp):
    """Records each POST; dies inside the first one, after the target received it."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str | None] = []

    def post(self, url, body, *, idempotency_key=None):
        result = super().post(url, body, idempotency_key=idempotency_key)
        self.keys.append(idempotency_key)
        if len(self.posts) == 1:
            raise WorkerDied
        return result


POST_FREELY = Definition(
    objective="Post the input.",
    tools=(ToolSpec("http_post", EffectClass.EXTERNAL_WRITE, whitelisted=True),),
)
POST_APPROVED = Definition(
    objective="Post the input.", tools=(ToolSpec("http_post", EffectClass.EXTERNAL_WRITE),)
)


class TestEffectsAreNeverSilentlyRepeated:
    def test_a_write_started_without_a_result_goes_back_to_a_human(
        self, members, runs, store, clock
    ):
        """Even a whitelisted (never approved) write: the recovering worker does not repeat it."""
        run, _ = runs.start_run(OPERATOR, published(members, POST_FREELY), {"url": "http://t/"})
        http = DyingHttp()
        a = Dispatcher(store, clock, OfflineLanguageModel(), http, run_settings(), "a")
        with pytest.raises(WorkerDied):
            a.run_next()
        clock.advance(a.settings.lease_seconds + 1)
        b = Dispatcher(store, clock, OfflineLanguageModel(), http, run_settings(), "b")
        assert b.run_next()
        waiting = runs.get_run(OPERATOR, run.id)
        assert waiting.status is RunStatus.WAITING_APPROVAL
        [approval] = store.state.approvals.values()
        assert approval.outcome_unknown and approval.tool == "http_post"
        assert len(http.posts) == 1

        runs.approve_approval(OPERATOR, approval.id)
        assert b.run_next()
        assert runs.get_run(OPERATOR, run.id).status is RunStatus.SUCCEEDED
        assert len(http.posts) == 2  # once per decision: the crash's, then the human's
        assert http.keys[0] is not None and http.keys == [http.keys[0]] * 2
        assert timeline(store, run.id).count("tool.started") == 2

    def test_a_rejected_unknown_outcome_fails_the_run_without_repeating(
        self, members, runs, store, clock
    ):
        run, _ = runs.start_run(OPERATOR, published(members, POST_FREELY), {"url": "http://t/"})
        http = DyingHttp()
        a = Dispatcher(store, clock, OfflineLanguageModel(), http, run_settings(), "a")
        with pytest.raises(WorkerDied):
            a.run_next()
        clock.advance(a.settings.lease_seconds + 1)
        assert a.run_next()
        [approval] = store.state.approvals.values()
        runs.reject_approval(OPERATOR, approval.id, "it went through")
        assert runs.get_run(OPERATOR, run.id).error["code"] == "ApprovalRejected"
        assert not a.run_next() and len(http.posts) == 1


class LosesItsLease:
    """The offline model, except that during the first call the worker's lease runs out and
    ``taker`` recovers the run, and dies inside its own write call."""

    name = "offline"

    def __init__(self, clock, taker: Dispatcher, lease_seconds: float) -> None:
        self._model, self._clock, self._taker = OfflineLanguageModel(), clock, taker
        self._lease_seconds, self.calls = lease_seconds, 0

    def complete(self, messages, tools):
        self.calls += 1
        if self.calls == 1:
            self._clock.advance(self._lease_seconds + 1)
            with pytest.raises(WorkerDied):
                self._taker.run_next()
        return self._model.complete(messages, tools)


class TestArming:
    def test_a_step_refused_for_a_lost_lease_leaves_nothing_armed(
        self, members, runs, store, clock
    ):
        """Worker a's reply would arm the write, but b took the run over meanwhile (and
        started the same call, then died in it): a's save is refused. When a recovers the run
        later, the call started without a result goes to a human: a must not think that it
        armed that call itself (ADR 0071)."""
        run, _ = runs.start_run(OPERATOR, published(members, POST_FREELY), {"url": "http://t/"})
        settings = run_settings()
        dying = DyingHttp()
        b = Dispatcher(store, clock, OfflineLanguageModel(), dying, settings, "b")
        http = RecordingHttp()
        model = LosesItsLease(clock, b, settings.lease_seconds)
        a = Dispatcher(store, clock, model, http, settings, "a")
        assert a.run_next()  # claimed, then its reply refused: b holds the run
        assert len(dying.posts) == 1 and http.posts == []
        assert runs.get_run(OPERATOR, run.id).claimed_by == "b"

        clock.advance(settings.lease_seconds + 1)  # b died in its call
        assert a.run_next()
        waiting = runs.get_run(OPERATOR, run.id)
        assert waiting.status is RunStatus.WAITING_APPROVAL
        [approval] = store.state.approvals.values()
        assert approval.outcome_unknown and http.posts == []


class TestStepLimit:
    def test_the_step_limit_counts_the_steps_before_a_resume(self, members, runs, store, clock):
        run, _ = runs.start_run(OPERATOR, published(members, POST_APPROVED), {"url": "http://t/"})
        w = worker(store, clock, max_steps=2)
        assert w.run_next()  # one model reply, then the approval
        [approval] = store.state.approvals.values()
        runs.approve_approval(OPERATOR, approval.id)
        assert w.run_next()  # the tool call, then the limit (the final reply would be the 3rd)
        failed = runs.get_run(OPERATOR, run.id)
        assert (failed.status, failed.error["code"]) == (RunStatus.FAILED, "StepLimit")
