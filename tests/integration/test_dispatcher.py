"""The dispatcher in-process: leases, heartbeats, recovery after a frozen worker, signals.

A worker that "froze" is a dispatcher thread blocked inside a model call (a model that waits on
an event) whose lease is then made to run out, as if its heartbeat had stopped (a killed
process is covered in ``test_dispatcher_processes``). The model is the offline one behind that
gate, so every step is the real engine's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain import run_services, services
from domain.engine import Dispatcher
from domain.model import Actor, Definition, EffectClass, RunStatus, ToolSpec
from domain.offline_model import OfflineModel
from domain.ports import ModelReply
from domain.runtime import RunSettings, Runtime
from domain.signals import Signal
from domain.unit_of_work import Database
from scaicrew.adapters.http_tools import AllowListedHttp

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
        self._model = OfflineModel()
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


def runtime(database: Database, model: Any = None, lease: float = 30.0) -> Runtime:
    return Runtime(
        uow=database,
        http=AllowListedHttp((), 1.0),
        model=model or OfflineModel(),
        settings=RunSettings(lease_seconds=lease),
    )


def drain(database: Database) -> None:
    """Let an ordinary worker finish whatever other tests left claimable in the shared queue."""
    dispatcher = Dispatcher(runtime(database), "drain")
    while dispatcher.run_next():
        pass


def queued_run(database: Database, actor: Actor, definition: Definition = NOTES) -> str:
    crew = services.create_crew(database, actor, f"Crew {time.monotonic_ns()}")
    member = services.create_member(
        database, actor, crew_id=crew.id, name="Worker", definition=definition
    )
    services.publish_member(database, actor, member.id)
    run, _ = run_services.start_run(runtime(database), actor, member.id, {"n": 1})
    return run.id


def read(database: Database, run_id: str) -> Any:
    with database() as tx:
        return tx.runs.get_run(None, run_id)


def types(database: Database, actor: Actor, run_id: str) -> list[str]:
    with database() as tx:
        return [e.type for e in tx.runs.list_events(actor.workspace_id, run_id, 0, 500)]


def miss_heartbeats(database: Database, run_id: str) -> None:
    """Make the run's lease run out now, as if its worker froze (no heartbeat for a lease)."""
    with database(write=True) as tx:
        past = datetime.now(UTC) - timedelta(seconds=1)
        assert tx.runs.update_run(run_id, {"lease_expires_at": past}) == 1
        tx.commit()


def wait_until_lease_expired(database: Database, run_id: str) -> None:
    deadline = time.monotonic() + WAIT
    while True:
        run = read(database, run_id)
        if run.lease_expires_at is not None and run.lease_expires_at < datetime.now(UTC):
            return
        assert time.monotonic() < deadline, "the lease never expired"
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
        self, database, actor, threads
    ):
        drain(database)
        run_id = queued_run(database, actor)
        dead = GatedModel(gate_at=2)  # dies after its first tool call was committed
        a = runtime(database, dead)
        in_thread(threads, lambda: Dispatcher(a, "worker-a").run_next())
        assert dead.entered.wait(WAIT)
        miss_heartbeats(database, run_id)

        assert Dispatcher(runtime(database), "worker-b").run_next()
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
        self, database, actor, threads
    ):
        drain(database)
        run_id = queued_run(database, actor)
        stalled, taker = GatedModel(gate_at=1), GatedModel(gate_at=1)
        in_thread(threads, lambda: Dispatcher(runtime(database, stalled), "a").run_next())
        assert stalled.entered.wait(WAIT)
        miss_heartbeats(database, run_id)
        in_thread(threads, lambda: Dispatcher(runtime(database, taker), "b").run_next())
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
        self, database, actor, threads
    ):
        drain(database)
        run_id = queued_run(database, actor)
        slow = GatedModel(gate_at=1)
        in_thread(threads, lambda: Dispatcher(runtime(database, slow, 0.6), "a").run_next())
        assert slow.entered.wait(WAIT)
        first_lease = read(database, run_id).lease_expires_at
        while datetime.now(UTC) < first_lease + timedelta(seconds=0.3):
            time.sleep(0.02)  # let the first lease run out while the call is still in flight
        assert Dispatcher(runtime(database), "b").claim() is None  # the heartbeat renewed it
        assert read(database, run_id).lease_expires_at > first_lease
        slow.release.set()
        threads[0].join(WAIT)
        run = read(database, run_id)
        assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 1)
        assert "run.recovered" not in types(database, actor, run_id)

    def test_a_run_that_lost_its_worker_too_often_fails(self, database, actor):
        drain(database)
        run_id = queued_run(database, actor)
        dispatcher = Dispatcher(runtime(database, lease=0.05), "flaky")
        for attempt in (1, 2, 3):
            assert dispatcher.claim() == run_id  # claimed, then "dies" before any step
            assert read(database, run_id).attempts == attempt
            wait_until_lease_expired(database, run_id)
        assert dispatcher.claim() is None
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

    def test_a_waiting_run_is_never_claimed(self, database, actor):
        drain(database)
        run_id = queued_run(database, actor, POSTER)
        dispatcher = Dispatcher(runtime(database), "w")
        assert dispatcher.run_next()
        assert read(database, run_id).status is RunStatus.WAITING_APPROVAL
        assert read(database, run_id).lease_expires_at is None
        assert dispatcher.claim() is None


class TestSignals:
    def test_every_status_change_is_published_after_its_commit(self, database, actor):
        drain(database)
        rt = runtime(database)
        seen: list[tuple[str, str, bool]] = []

        def record(signal: Signal) -> None:
            data = signal.data
            if signal.kind == "run.changed":
                committed = read(database, data["run_id"]).status.value == data["status"]
                seen.append((signal.kind, data["status"], committed))
            else:
                seen.append((signal.kind, data.get("status", ""), True))

        rt.signals.subscribe(record)
        crew = services.create_crew(database, actor, "Signals")
        member = services.create_member(
            database, actor, crew_id=crew.id, name="Poster", definition=POSTER
        )
        services.publish_member(database, actor, member.id)
        run, _ = run_services.start_run(rt, actor, member.id, {"url": "http://127.0.0.1:9/"})
        dispatcher = Dispatcher(rt, "w")
        assert dispatcher.run_next()
        with database() as tx:
            [approval] = tx.runs.list_approvals(actor.workspace_id, None, 10, {"run_id": run.id})
        run_services.decide_approval(rt, actor, approval.id, approve=True)
        assert dispatcher.run_next()
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
                tx.runs.write_note(actor.workspace_id, "shared", f"v{index}", datetime.now(UTC))
                tx.commit()

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(write, range(8)))
        with database() as tx:
            assert tx.runs.read_note(actor.workspace_id, "shared") in {f"v{i}" for i in range(8)}
