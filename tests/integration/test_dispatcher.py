"""The dispatcher in-process: leases, heartbeats, recovery after a frozen worker, signals.

A worker that "froze" is a dispatcher thread blocked inside a model call (a model that waits on
an event) whose lease is then made to run out, as if its heartbeat had stopped (a killed
process is covered in ``test_dispatcher_processes``). The model is the offline one behind that
gate, so every step is the real engine's. Where a lease must run out, the dispatchers share a
``ManualClock`` that the test moves: no test waits for time to pass.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from domain.database import Database
from domain.kernel import Actor, ManualClock, Signal
from domain.members import Definition, EffectClass, ToolSpec
from domain.runs import (
    ApprovalFilter,
    DispatchTurns,
    ModelReply,
    OfflineLanguageModel,
    RunStatus,
)
from domain.use_cases import UseCases
from tests.support.domain import dispatcher
from tests.support.stores import PatchedStore

NOTES = Definition(
    objective="Keep notes.",
    tools=(
        ToolSpec("notes_write", EffectClass.INTERNAL),
        ToolSpec("notes_read", EffectClass.INTERNAL),
    ),
)
POSTER = Definition(objective="Post.", tools=(ToolSpec("http_post", EffectClass.EXTERNAL_WRITE),))
WAIT = 15.0


class GatedModel:
    """The offline model, except that call number ``gate_at`` waits until ``release``."""

    name = "offline"

    def __init__(self, gate_at: int | None = None) -> None:
        self._model = OfflineLanguageModel()
        self._gate_at = gate_at
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelReply:
        self.calls += 1
        if self.calls == self._gate_at:
            self.entered.set()
            assert self.release.wait(WAIT), "gated model never released"
        return self._model.complete(messages, tools)


def drain(database: Database) -> None:
    """Let an ordinary worker finish whatever other tests left claimable in the shared queue."""
    worker = dispatcher(database, "drain")
    while worker.run_next():
        pass


def queued_run(use_cases: UseCases, actor: Actor, definition: Definition = NOTES) -> str:
    members = use_cases.members
    crew = members.create_crew(actor, f"Crew {time.monotonic_ns()}")
    member = members.create_member(actor, crew_id=crew.id, name="Worker", definition=definition)
    members.publish_member(actor, member.id)
    run, _ = use_cases.runs.start_run(actor, member.id, {"n": 1})
    return run.id


def read(database: Database, run_id: str) -> Any:
    with database() as tx:
        return tx.runs.get(None, run_id)


def types(database: Database, actor: Actor, run_id: str) -> list[str]:
    with database() as tx:
        return [e.type for e in tx.runs.list_events(actor.workspace_id, run_id, 0, 500)]


def miss_heartbeats(database: Database, run_id: str) -> None:
    """Make the run's lease run out now, as if its worker froze (no heartbeat for a lease)."""
    with database(write=True) as tx:
        tx.runs.extend_lease(run_id, datetime.now(UTC) - timedelta(seconds=1))
        tx.commit()


def wait_for_lease_beyond(database: Database, run_id: str, instant: datetime) -> None:
    """Wait (bounded) until the run's lease was renewed to after ``instant``."""
    deadline = time.monotonic() + WAIT
    while True:
        lease = read(database, run_id).lease_expires_at
        if lease is not None and lease > instant:
            return
        assert time.monotonic() < deadline, "the lease was never renewed"
        time.sleep(0.01)


@pytest.fixture
def threads() -> Iterator[list[threading.Thread]]:
    started: list[threading.Thread] = []
    yield started
    for thread in started:
        thread.join(WAIT)


def in_thread(threads: list[threading.Thread], target: Any) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    threads.append(thread)
    return thread


class TestRecovery:
    def test_a_dead_workers_run_is_recovered_from_its_last_committed_step(
        self, database, use_cases, actor, threads
    ):
        drain(database)
        run_id = queued_run(use_cases, actor)
        dead = GatedModel(gate_at=2)  # dies after its first tool call was committed
        a = dispatcher(database, "worker-a", model=dead)
        in_thread(threads, a.run_next)
        assert dead.entered.wait(WAIT)
        miss_heartbeats(database, run_id)

        assert dispatcher(database, "worker-b").run_next()
        run = read(database, run_id)
        assert run.status is RunStatus.SUCCEEDED, run.error
        assert run.attempts == 2
        timeline = types(database, actor, run_id)
        assert timeline == [
            "run.queued",
            "run.started",
            "model.replied",
            "tool.succeeded",  # notes_write, by worker a: not repeated
            "run.recovered",
            "model.replied",
            "tool.succeeded",  # notes_read, by worker b
            "model.replied",
            "run.succeeded",
        ]
        dead.release.set()  # the "dead" worker wakes up late: it must not touch the run
        threads[0].join(WAIT)
        assert read(database, run_id).status is RunStatus.SUCCEEDED
        assert types(database, actor, run_id) == timeline

    def test_a_stalled_worker_cannot_write_over_the_worker_that_took_its_run_over(
        self, database, use_cases, actor, threads
    ):
        drain(database)
        run_id = queued_run(use_cases, actor)
        stalled, taker = GatedModel(gate_at=1), GatedModel(gate_at=1)
        in_thread(threads, dispatcher(database, "a", model=stalled).run_next)
        assert stalled.entered.wait(WAIT)
        miss_heartbeats(database, run_id)
        in_thread(threads, dispatcher(database, "b", model=taker).run_next)
        assert taker.entered.wait(WAIT)
        assert read(database, run_id).claimed_by == "b"

        stalled.release.set()  # a's model answers now, after b recovered the run
        threads[0].join(WAIT)
        run = read(database, run_id)
        assert (run.status, run.claimed_by, run.error) == (RunStatus.RUNNING, "b", None)

        taker.release.set()
        threads[1].join(WAIT)
        run = read(database, run_id)
        assert run.status is RunStatus.SUCCEEDED, run.error
        timeline = types(database, actor, run_id)
        assert timeline.count("run.recovered") == 1
        assert timeline.count("model.replied") == 3  # b's three replies; a's was dropped

    def test_a_live_worker_keeps_its_run_through_a_call_longer_than_the_lease(
        self, database, use_cases, actor, threads
    ):
        drain(database)
        run_id = queued_run(use_cases, actor)
        clock = ManualClock(datetime.now(UTC))
        slow = GatedModel(gate_at=1)
        # A short lease, so the heartbeat (every third of it) beats while the call is held.
        in_thread(
            threads, dispatcher(database, "a", model=slow, clock=clock, lease_seconds=0.3).run_next
        )
        assert slow.entered.wait(WAIT)
        first_lease = read(database, run_id).lease_expires_at
        now = clock.advance(1.0)  # the first lease ran out while the call is still in flight
        wait_for_lease_beyond(database, run_id, now)  # the heartbeat renewed it
        assert dispatcher(database, "b", clock=clock).claim() is None
        assert read(database, run_id).lease_expires_at > first_lease
        slow.release.set()
        threads[0].join(WAIT)
        run = read(database, run_id)
        assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 1)
        assert "run.recovered" not in types(database, actor, run_id)

    def test_a_run_that_lost_its_worker_too_often_fails(self, database, use_cases, actor):
        drain(database)
        run_id = queued_run(use_cases, actor)
        clock = ManualClock(datetime.now(UTC))
        flaky = dispatcher(database, "flaky", clock=clock)
        for attempt in (1, 2, 3):
            assert flaky.claim() == run_id  # claimed, then "dies" before any step
            assert read(database, run_id).attempts == attempt
            assert flaky.claim() is None  # its lease still holds
            clock.advance(flaky.settings.lease_seconds + 1)
        assert flaky.claim() is None
        run = read(database, run_id)
        assert run.status is RunStatus.FAILED
        assert run.error == {"code": "WorkerLost", "message": "The run's worker stopped 3 times."}
        assert run.finished_at is not None and run.claimed_by is None
        assert types(database, actor, run_id) == [
            "run.queued",
            "run.started",
            "run.recovered",
            "run.recovered",
            "run.failed",
        ]

    def test_a_waiting_run_is_never_claimed(self, database, use_cases, actor):
        drain(database)
        run_id = queued_run(use_cases, actor, POSTER)
        worker = dispatcher(database, "w")
        assert worker.run_next()
        assert read(database, run_id).status is RunStatus.WAITING_APPROVAL
        assert read(database, run_id).lease_expires_at is None
        assert worker.claim() is None


class TestSignals:
    def test_every_status_change_is_published_after_its_commit(self, database, use_cases, actor):
        drain(database)
        seen: list[tuple[str, str, bool]] = []

        def record(signal: Signal) -> None:
            data = signal.data
            if signal.kind == "run.changed":
                committed = read(database, data["run_id"]).status.value == data["status"]
                seen.append((signal.kind, data["status"], committed))
            else:
                seen.append((signal.kind, data.get("status", ""), True))

        unsubscribe = database.signals.subscribe(record)
        members = use_cases.members
        crew = members.create_crew(actor, "Signals")
        member = members.create_member(actor, crew_id=crew.id, name="Poster", definition=POSTER)
        members.publish_member(actor, member.id)
        run, _ = use_cases.runs.start_run(actor, member.id, {"url": "http://127.0.0.1:9/"})
        worker = dispatcher(database, "w")
        assert worker.run_next()
        with database() as tx:
            pending = ApprovalFilter(run_id=run.id)
            [approval] = tx.runs.list_approvals(actor.workspace_id, None, 10, pending)
        use_cases.runs.approve_approval(actor, approval.id)
        assert worker.run_next()
        unsubscribe()
        assert seen == [
            ("run.changed", "queued", True),
            ("run.changed", "running", True),
            ("run.changed", "waiting_approval", True),
            ("approval.requested", "", True),
            ("run.changed", "queued", True),
            ("approval.decided", "approved", True),
            ("run.changed", "running", True),
            ("run.changed", "failed", True),  # 127.0.0.1 is not allow-listed here
        ]
        assert read(database, run.id).error["code"] == "ToolFailed"


class TestNotes:
    def test_concurrent_first_writes_of_a_note_all_succeed(self, database, actor):
        """Eight writers of one new key at once (the upsert must not race on PostgreSQL)."""
        barrier = threading.Barrier(8)

        def write(index: int) -> None:
            barrier.wait(timeout=10)
            with database(write=True) as tx:
                tx.notes.write(actor.workspace_id, "shared", f"v{index}", datetime.now(UTC))
                tx.commit()

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(write, range(8)))
        with database() as tx:
            assert tx.notes.read(actor.workspace_id, "shared") in {f"v{i}" for i in range(8)}


class WorkerDied(BaseException):
    """The worker process dies here (nothing after it runs, nothing is committed)."""


def dies_after_the_note(database: Database) -> PatchedStore:
    """A store over ``database`` whose unit of work dies when it saves a run after writing a
    note: what a crash between a notes tool's write and its recorded result leaves."""

    def patch(tx: Any) -> None:
        write, save = tx.notes.write, tx.runs.save_step
        wrote: list[str] = []

        def write_note(*args: Any, **kwargs: Any) -> None:
            write(*args, **kwargs)
            wrote.append("note")

        def save_step(*args: Any, **kwargs: Any) -> Any:
            if wrote:
                raise WorkerDied
            return save(*args, **kwargs)

        tx.notes.write, tx.runs.save_step = write_note, save_step

    return PatchedStore(database, patch)


def note(database: Database, actor: Actor, key: str = "last_input") -> str | None:
    with database() as tx:
        return tx.notes.read(actor.workspace_id, key)


class TestNotesTools:
    """The notes tools run inside the transaction that records their result (ADR 0068)."""

    def test_a_crash_before_the_result_is_recorded_leaves_no_note(self, database, use_cases, actor):
        drain(database)
        run_id = queued_run(use_cases, actor)
        with database(write=True) as tx:  # no note from an earlier test under this key
            tx.connection.execute(
                text("DELETE FROM notes WHERE workspace_id = :workspace_id"),
                {"workspace_id": actor.workspace_id},
            )
            tx.commit()
        with pytest.raises(WorkerDied):
            dispatcher(dies_after_the_note(database), "dies").run_next()  # type: ignore[arg-type]
        assert note(database, actor) is None  # the note went with the step it belonged to
        assert types(database, actor, run_id) == ["run.queued", "run.started", "model.replied"]

        miss_heartbeats(database, run_id)
        assert dispatcher(database, "recovers").run_next()
        run = read(database, run_id)
        assert run.status is RunStatus.SUCCEEDED, run.error
        assert note(database, actor) == '{"n": 1}'
        assert types(database, actor, run_id).count("tool.succeeded") == 2  # write, then read


class InProcessModel:
    """The offline model, declared in-process; during call ``probe_at`` it starts ``probe`` in a
    thread and reports whether that thread was still waiting a moment later."""

    name = "offline"
    in_process = True

    def __init__(self, probe_at: int, probe: Any) -> None:
        self._model = OfflineLanguageModel()
        self._probe_at = probe_at
        self._probe = probe
        self.calls = 0
        self.probe_was_waiting: bool | None = None
        self.probe_thread: threading.Thread | None = None

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelReply:
        self.calls += 1
        if self.calls == self._probe_at:
            self.probe_thread = threading.Thread(target=self._probe, daemon=True)
            self.probe_thread.start()
            self.probe_thread.join(0.3)
            self.probe_was_waiting = self.probe_thread.is_alive()
        return self._model.complete(messages, tools)


def two_queued_runs(use_cases: UseCases, actor: Actor, database: Database) -> tuple[str, str]:
    first = queued_run(use_cases, actor)
    second, _ = use_cases.runs.start_run(actor, read(database, first).member_id, {"n": 2})
    return first, second.id


class TestTurns:
    """Dispatchers sharing ``DispatchTurns`` (as on SQLite) take turns (ADR 0056)."""

    def test_a_dispatcher_waiting_on_its_model_lets_another_take_the_turn(
        self, database, use_cases, actor, threads
    ):
        drain(database)
        turns = DispatchTurns()
        first, second = two_queued_runs(use_cases, actor, database)
        gated = GatedModel(gate_at=1)
        a = dispatcher(database, "worker-a", model=gated, turns=turns)
        in_thread(threads, a.run_next)
        assert gated.entered.wait(WAIT)  # a holds the first run, waiting on its model

        b = in_thread(threads, dispatcher(database, "worker-b", turns=turns).run_next)
        b.join(WAIT)
        assert not b.is_alive()
        assert read(database, second).status is RunStatus.SUCCEEDED
        assert read(database, first).status is RunStatus.RUNNING
        gated.release.set()
        threads[0].join(WAIT)
        assert read(database, first).status is RunStatus.SUCCEEDED

    def test_an_in_process_model_call_keeps_the_turn(self, database, use_cases, actor, threads):
        drain(database)
        turns = DispatchTurns()
        first, second = two_queued_runs(use_cases, actor, database)
        b = dispatcher(database, "worker-b", turns=turns)
        model = InProcessModel(probe_at=1, probe=b.run_next)
        assert dispatcher(database, "worker-a", model=model, turns=turns).run_next()

        assert model.probe_was_waiting is True  # b waited for a's turn through the call
        assert model.probe_thread is not None
        model.probe_thread.join(WAIT)
        assert read(database, first).status is RunStatus.SUCCEEDED
        assert read(database, second).status is RunStatus.SUCCEEDED
