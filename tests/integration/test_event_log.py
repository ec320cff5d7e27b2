"""The workspace event log: written with the change it reports, numbered gap-free, published
after the commit, and delivered by the stream hub in order, once, without holes."""

from __future__ import annotations

import select
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from domain.database import Database
from domain.kernel import Signal, SystemClock
from domain.stream import StreamHub, decode_notification, notify_payload, notify_template
from scaicrew.adapters import pg_listener
from scaicrew.adapters.pg_listener import PgListener
from tests.support.domain import stream_settings

WRITERS = 8
COMMITS = 15
WAIT = 20.0


def _signal(workspace_id: str, n: int) -> Signal:
    return Signal(workspace_id, "run.changed", {"run_id": f"run_{n}", "status": "queued"})


def _head(database, workspace_id: str) -> int:
    with database() as tx:
        return tx.events.head(workspace_id)


class TestUnitOfWork:
    def test_a_rolled_back_unit_of_work_stores_and_publishes_nothing(self, database, actor):
        published: list[Signal] = []
        unsubscribe = database.signals.subscribe(published.append)
        try:
            with pytest.raises(RuntimeError), database(write=True) as tx:
                tx.record(_signal(actor.workspace_id, 1))
                raise RuntimeError("the use case failed")
            with database(write=True) as tx:
                tx.record(_signal(actor.workspace_id, 2))  # left without commit
        finally:
            unsubscribe()
        assert _head(database, actor.workspace_id) == 0
        assert [s for s in published if s.workspace_id == actor.workspace_id] == []

    def test_committed_signals_are_numbered_and_published_after_the_commit(self, database, actor):
        seen: list[tuple[int | None, int]] = []

        def record(signal: Signal) -> None:
            if signal.workspace_id == actor.workspace_id:
                seen.append((signal.seq, _head(database, actor.workspace_id)))

        unsubscribe = database.signals.subscribe(record)
        try:
            for batch in ([1, 2], [3]):
                with database(write=True) as tx:
                    for n in batch:
                        tx.record(_signal(actor.workspace_id, n))
                    tx.commit()
        finally:
            unsubscribe()
        assert seen == [(1, 2), (2, 2), (3, 3)]  # each one visible to others when published
        with database() as tx:
            logged = tx.events.read(actor.workspace_id, 0, 10)
        assert [(s.seq, s.data["run_id"]) for s in logged] == [
            (1, "run_1"),
            (2, "run_2"),
            (3, "run_3"),
        ]

    def test_workspaces_are_numbered_separately(self, database, make_actor):
        a, b = make_actor(), make_actor()
        with database(write=True) as tx:
            tx.record(_signal(a.workspace_id, 1))
            tx.record(_signal(b.workspace_id, 1))
            tx.record(_signal(a.workspace_id, 2))
            tx.commit()
        assert (_head(database, a.workspace_id), _head(database, b.workspace_id)) == (2, 1)


class TestConcurrentWriters:
    def test_sequence_numbers_are_gap_free_and_the_hub_delivers_them_in_order(
        self, database, actor
    ):
        """Concurrent writers of one workspace; a live subscriber sees 1..N exactly once."""
        hub = StreamHub(database, SystemClock(), stream_settings())
        unsubscribe_hub = database.signals.subscribe(hub.on_signal)
        delivered: list[int] = []
        lock = threading.Lock()

        def collect(signal: Signal) -> None:
            with lock:
                delivered.append(int(signal.seq or 0))

        unsubscribe = hub.subscribe(actor.workspace_id, collect)
        barrier = threading.Barrier(WRITERS)

        def write(writer: int) -> None:
            barrier.wait(timeout=WAIT)
            for n in range(COMMITS):
                with database(write=True) as tx:
                    tx.record(_signal(actor.workspace_id, writer * 1000 + n))
                    tx.commit()

        try:
            with ThreadPoolExecutor(max_workers=WRITERS) as pool:
                for future in [pool.submit(write, w) for w in range(WRITERS)]:
                    future.result(timeout=WAIT * 3)
        finally:
            unsubscribe()
            unsubscribe_hub()
        total = WRITERS * COMMITS
        assert _head(database, actor.workspace_id) == total
        with database() as tx:
            logged = tx.events.read(actor.workspace_id, 0, total + 1)
        assert [s.seq for s in logged] == list(range(1, total + 1))
        assert delivered == list(range(1, total + 1))


class TestNotifications:
    def test_a_payload_carries_the_events_or_only_their_range_when_large(self):
        at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        small = [
            Signal("wsp_a", "run.changed", {"run_id": "r", "status": "queued"}),
            Signal("wsp_a", "run.changed", {"run_id": "r", "note": "100% done"}),
        ]
        template, ranged = notify_template("wsp_a", small, at)
        assert not ranged
        workspace_id, signals, through = decode_notification(notify_payload(template, False, 7, 8))
        assert (workspace_id, through) == ("wsp_a", None)
        assert [(s.seq, s.kind, s.data, s.at) for s in signals] == [
            (7, "run.changed", small[0].data, at),
            (8, "run.changed", small[1].data, at),
        ]
        large = [Signal("wsp_a", "trigger.fired", {"blob": "x" * 9000})]
        template, ranged = notify_template("wsp_a", large, at)
        assert ranged
        assert decode_notification(notify_payload(template, True, 8, 8)) == ("wsp_a", [], 8)

    @pytest.mark.postgres
    def test_the_listener_hears_commits_of_another_engine(self, database, settings, actor):
        if database.is_sqlite:
            pytest.skip("needs TEST_DATABASE_URL (PostgreSQL): LISTEN/NOTIFY")
        heard: list[Signal] = []
        ranges: list[tuple[str, int]] = []
        connects: list[bool] = []
        listener = PgListener(
            settings.database_url,
            on_signals=heard.extend,
            on_range=lambda w, t: ranges.append((w, t)),
            on_connect=lambda: connects.append(True),
        )
        listener.start()
        other = Database(settings.database_url)
        try:
            assert listener.connected.wait(WAIT)
            with other(write=True) as tx:
                tx.record(_signal(actor.workspace_id, 1))
                tx.record(Signal(actor.workspace_id, "trigger.fired", {"blob": "x" * 9000}))
                tx.commit()
            deadline = time.monotonic() + WAIT
            while not ranges:
                assert time.monotonic() < deadline, heard
                time.sleep(0.02)
        finally:
            listener.stop()
            other.dispose()
        assert connects == [True]
        assert ranges == [(actor.workspace_id, 2)]  # too large for a notification
        assert heard == []  # one notification per workspace and commit: the range

    @pytest.mark.postgres
    def test_the_notified_events_are_the_stored_ones(self, database, settings, actor):
        if database.is_sqlite:
            pytest.skip("needs TEST_DATABASE_URL (PostgreSQL): LISTEN/NOTIFY")
        # The statement that numbers the events also writes their notification (ADR 0062):
        # what a listener hears must be what the log holds, number for number.
        heard: list[Signal] = []
        listener = PgListener(
            settings.database_url,
            on_signals=heard.extend,
            on_range=lambda w, t: None,
            on_connect=lambda: None,
        )
        listener.start()
        other = Database(settings.database_url)
        stored: list[Signal] = []
        other.signals.subscribe(stored.append)
        try:
            assert listener.connected.wait(WAIT)
            for batch in (2, 1):
                with other(write=True) as tx:
                    for n in range(batch):
                        data = {"n": n, "note": "100% %s %1$s done", "nested": {"ü": [1, None]}}
                        tx.record(Signal(actor.workspace_id, "run.changed", data))
                    tx.commit()
            deadline = time.monotonic() + WAIT
            while len(heard) < 3:
                assert time.monotonic() < deadline, heard
                time.sleep(0.02)
            with database() as tx:
                logged = tx.events.read(actor.workspace_id, 0, 10)
        finally:
            listener.stop()
            other.dispose()
        as_heard = [(s.seq, s.kind, s.data, s.at) for s in heard]
        assert as_heard == [(s.seq, s.kind, s.data, s.at) for s in stored]
        assert as_heard == [(s.seq, s.kind, s.data, s.at) for s in logged]
        assert [s.seq for s in heard] == [1, 2, 3]

    @pytest.mark.postgres
    def test_stopping_an_idle_listener_wakes_it_at_once(self, database, settings, monkeypatch):
        if database.is_sqlite:
            pytest.skip("needs TEST_DATABASE_URL (PostgreSQL): LISTEN/NOTIFY")
        # Every app shutdown (every test's lifespan) stops a listener: it must not sleep first.
        monkeypatch.setattr(pg_listener, "_IDLE_SECONDS", 3600.0)
        idle = threading.Event()

        def waiting(*args: object) -> object:
            idle.set()
            return select.select(*args)

        monkeypatch.setattr(pg_listener, "select", SimpleNamespace(select=waiting))
        listener = PgListener(
            settings.database_url,
            on_signals=lambda signals: None,
            on_range=lambda workspace_id, through: None,
            on_connect=lambda: None,
        )
        listener.start()
        assert listener.connected.wait(WAIT)
        assert idle.wait(WAIT)
        listener.stop(timeout=WAIT)
        assert not listener.connected.is_set()  # the thread left its connection and ended

    @pytest.mark.postgres
    def test_a_worker_hears_queued_runs_and_every_event_only_while_it_wants(
        self, database, settings, actor
    ):
        """ADR 0072: a commit that queues a run is announced on the work channel too; a
        listener with ``on_work`` and ``events=False`` hears those, and the events themselves
        only between ``want_events(True)`` and ``want_events(False)``. Notifications arrive in
        commit order, so once the work committed after an event is heard, so is the event
        (if it is listened to); and the change of ``want_events`` is made before the thread
        hands over any notification that follows it."""
        if database.is_sqlite:
            pytest.skip("needs TEST_DATABASE_URL (PostgreSQL): LISTEN/NOTIFY")
        heard: list[Signal] = []
        works: list[int] = []
        listener = PgListener(
            settings.database_url,
            on_signals=heard.extend,
            on_range=lambda w, t: None,
            on_connect=lambda: None,
            on_work=lambda: works.append(1),
            events=False,
        )
        other = Database(settings.database_url)
        n = iter(range(100))

        def commit(signal: Signal) -> None:
            with other(write=True) as tx:
                tx.record(signal)
                tx.commit()

        def event() -> Signal:
            signal = Signal(actor.workspace_id, "trigger.fired", {"n": next(n)})
            commit(signal)
            return signal

        def work() -> None:
            expected = len(works) + 1
            commit(_signal(actor.workspace_id, next(n)))
            deadline = time.monotonic() + WAIT
            while len(works) < expected:
                assert time.monotonic() < deadline, "no notification on the work channel"
                time.sleep(0.02)

        def fired() -> list[int]:
            return [s.data["n"] for s in heard if s.kind == "trigger.fired"]

        listener.start()
        try:
            assert listener.connected.wait(WAIT)
            first = event()
            work()
            assert heard == []  # not listening to every event: nothing but the work
            listener.want_events(True)
            work()  # handed over after the LISTEN
            second = event()
            work()
            listener.want_events(False)
            work()  # handed over after the UNLISTEN
            third = event()
            work()
        finally:
            listener.stop()
            other.dispose()
        assert works == [1] * 5
        assert fired() == [second.data["n"]]
        assert first.data["n"] not in fired() and third.data["n"] not in fired()


class TestHub:
    def test_a_hole_is_filled_from_the_log_and_duplicates_are_dropped(self, database, actor):
        hub = StreamHub(database, SystemClock(), stream_settings())
        delivered: list[int] = []
        unsubscribe = hub.subscribe(actor.workspace_id, lambda s: delivered.append(s.seq or 0))
        elsewhere = Database(database.url)  # another process, as far as the hub knows
        stored: list[Signal] = []
        elsewhere.signals.subscribe(stored.append)
        try:
            for n in range(3):
                with elsewhere(write=True) as tx:
                    tx.record(_signal(actor.workspace_id, n))
                    tx.commit()
            hub.on_signal(stored[2])  # 1 and 2 never arrived: read from the log
            hub.on_signal(stored[1])  # late duplicate
            assert delivered == [1, 2, 3]
            for n in range(2):
                with elsewhere(write=True) as tx:
                    tx.record(_signal(actor.workspace_id, n))
                    tx.commit()
            hub.catch_up()  # what the listener does on (re)connect, or the SQLite poll
            assert delivered == [1, 2, 3, 4, 5]
        finally:
            unsubscribe()
            elsewhere.dispose()
        assert hub.subscriber_count() == 0
