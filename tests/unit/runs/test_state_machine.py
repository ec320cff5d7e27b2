"""The run state machine is written down once (``TRANSITIONS``): every transition method
allows exactly the moves the table allows, the spec names the same statuses, and cancel
follows it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from domain.kernel import Role
from domain.members import Members
from domain.runs import (
    TRANSITIONS,
    ApprovalStatus,
    IllegalTransition,
    Run,
    RunFinished,
    RunOrigin,
    Runs,
    RunStatus,
)
from tests.unit.conftest import actor
from tests.unit.runs.test_dispatcher import POST_APPROVED, published, worker

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
OPERATOR = actor(Role.OPERATOR)

#: The transition method that moves a run to each status.
MOVES: dict[RunStatus, Any] = {
    RunStatus.QUEUED: lambda run: run.approved("call_1", NOW),
    RunStatus.RUNNING: lambda run: run.claimed("w", NOW, NOW + timedelta(seconds=30)),
    RunStatus.WAITING_APPROVAL: lambda run: run.awaiting_approval(NOW),
    RunStatus.SUCCEEDED: lambda run: run.succeeded({"done": True}, NOW),
    RunStatus.FAILED: lambda run: run.failed("ToolFailed", "no", NOW),
    RunStatus.CANCELLED: lambda run: run.cancelled(NOW),
}


def a_run(status: RunStatus) -> Run:
    run = Run.queued(
        workspace_id="wsp_1",
        member_id="mem_1",
        crew_id="crw_1",
        version_id="ver_1",
        version_number=1,
        program={"system_prompt": "Do it.", "tools": []},
        run_input={},
        origin=RunOrigin.MANUAL,
        dry_run=False,
        created_by="user",
        parent=None,
        now=NOW,
    )
    return replace(run, status=status)


@pytest.mark.parametrize("source", list(RunStatus), ids=lambda s: s.value)
@pytest.mark.parametrize("target", list(RunStatus), ids=lambda s: s.value)
def test_every_transition_is_allowed_exactly_when_the_table_allows_it(source, target):
    run = a_run(source)
    if target in TRANSITIONS[source]:
        assert MOVES[target](run).status is target
    else:
        with pytest.raises(IllegalTransition):
            MOVES[target](run)


def test_the_table_covers_every_status_and_finished_means_final():
    assert set(TRANSITIONS) == set(RunStatus)
    finished = {s for s in RunStatus if s.finished}
    assert finished == {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}
    for status in RunStatus:
        if not status.finished:  # any live run can be cancelled
            assert RunStatus.CANCELLED in TRANSITIONS[status]


def test_the_spec_names_the_same_statuses():
    spec = yaml.safe_load((Path(__file__).parents[3] / "openapi.yaml").read_text())
    enum = spec["components"]["schemas"]["RunStatus"]["enum"]
    assert enum == [s.value for s in RunStatus]


class TestCancel:
    @pytest.fixture
    def members(self, store, clock) -> Members:
        return Members(store, clock)

    @pytest.fixture
    def runs(self, store, clock) -> Runs:
        return Runs(store, clock)

    def test_a_queued_run_is_cancelled_and_never_claimed(self, members, runs, store, clock):
        run, _ = runs.start_run(OPERATOR, published(members), {})
        cancelled = runs.cancel_run(OPERATOR, run.id)
        assert cancelled.status is RunStatus.CANCELLED
        assert not worker(store, clock).run_next()
        assert store.state.events[run.id][-1].type == "run.cancelled"
        assert [s.data["status"] for s in store.signals if s.kind == "run.changed"][-1] == (
            "cancelled"
        )
        with pytest.raises(RunFinished):
            runs.cancel_run(OPERATOR, run.id)

    def test_a_running_run_writes_no_further_step(self, members, runs, store, clock):
        run, _ = runs.start_run(OPERATOR, published(members), {})
        w = worker(store, clock)
        assert w.claim() == run.id
        runs.cancel_run(OPERATOR, run.id)
        w.execute(run.id)  # the worker wakes at its step boundary
        assert runs.get_run(OPERATOR, run.id).status is RunStatus.CANCELLED
        assert [e.type for e in store.state.events[run.id]][-1] == "run.cancelled"
        assert "model.replied" not in [e.type for e in store.state.events[run.id]]

    def test_a_waiting_run_s_approval_is_cancelled(self, members, runs, store, clock):
        run, _ = runs.start_run(OPERATOR, published(members, POST_APPROVED), {"url": "h"})
        assert worker(store, clock).run_next()
        runs.cancel_run(OPERATOR, run.id)
        [approval] = store.state.approvals.values()
        assert approval.status is ApprovalStatus.CANCELLED
        decided = [s.data for s in store.signals if s.kind == "approval.decided"]
        assert decided[-1]["status"] == "cancelled"
