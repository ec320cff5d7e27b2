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
