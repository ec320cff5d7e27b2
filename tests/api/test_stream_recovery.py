"""The live half of a stream recovers what its inbox never held: a client too slow for a
burst (its bounded inbox dropped events) and a delivery that skips ahead (a hole) are both
filled from the event log, so the client still reads every event once, in order.

These drive the stream's follow loop on an event loop of their own, against the app's real
use cases and database. Commits made on the loop's thread reach the inbox as one batch when
the loop next runs, which makes the overflow deterministic: no server, no timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from domain.kernel import Actor, Role, Signal
from handlers import stream
from tests.support.sse import Event, parse

LIFETIME = 2.0  # seconds the follow loop waits for more before it ends

Prepare = Callable[[stream._Inbox], Awaitable[None]]


def _commit(use_cases, workspace_id: str, runs: list[str]) -> None:
    """One transaction that logs a run.changed per run (delivered live after the commit)."""
    with use_cases.database(write=True) as tx:
        for run_id in runs:
            tx.record(Signal(workspace_id, "run.changed", {"run_id": run_id, "status": "queued"}))
        tx.commit()


def _followed(use_cases, tenant, capacity: int, prepare: Prepare, count: int) -> list[Event]:
    """Subscribe, let ``prepare`` commit and tamper with the inbox, then read ``count`` events
    from the follow loop (which starts after the head at subscription time)."""
    viewer = Actor(tenant.workspace_id, "user-viewer", Role.VIEWER)

    async def scenario() -> list[Event]:
        loop = asyncio.get_running_loop()
        inbox = stream._Inbox(stream._LoopRelay.of(loop), capacity)
        opening = await asyncio.to_thread(use_cases.stream.open_stream, viewer, None, inbox.offer)
        events: list[Event] = []
        try:
            await prepare(inbox)
            frames = stream._follow(
                use_cases.stream, viewer, inbox, opening.after, loop.time() + LIFETIME
            )
            async for chunk in frames:
                events.extend(parse(chunk.decode()).events)
                if len(events) >= count:
                    break
            await frames.aclose()
        finally:
            opening.unsubscribe()
        return events

    return asyncio.run(scenario())


def _gap_free(events: list[Event]) -> bool:
    seqs = [e.seq for e in events]
    return seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_a_lagging_client_gets_what_its_inbox_dropped_from_the_log(app, tenant):
    use_cases = app.context.use_cases
    burst = [f"run_burst_{n}" for n in range(12)]

    async def commit_a_burst(inbox: stream._Inbox) -> None:
        _commit(use_cases, tenant.workspace_id, burst)  # on the loop's thread: one batch
        await asyncio.sleep(0)  # the relay hands the batch over; three fit, nine are dropped
        assert (inbox.queue.qsize(), inbox.lagged) == (3, True)

    events = _followed(use_cases, tenant, 3, commit_a_burst, len(burst))
    assert [e.data["run_id"] for e in events] == burst
    assert _gap_free(events)


def test_a_delivery_that_skips_ahead_is_preceded_by_the_events_it_skipped(app, tenant):
    use_cases = app.context.use_cases
    lost, live = ["run_hole_1", "run_hole_2"], ["run_hole_3"]

    async def lose_two_deliveries(inbox: stream._Inbox) -> None:
        _commit(use_cases, tenant.workspace_id, lost)
        await asyncio.sleep(0)
        while not inbox.queue.empty():  # as if their delivery never came
            inbox.queue.get_nowait()
        _commit(use_cases, tenant.workspace_id, live)
        await asyncio.sleep(0)
        assert (inbox.queue.qsize(), inbox.lagged) == (1, False)

    events = _followed(use_cases, tenant, 1000, lose_two_deliveries, len(lost) + len(live))
    assert [e.data["run_id"] for e in events] == lost + live
    assert _gap_free(events)


def test_the_follow_loop_arms_one_timer_for_its_deadline_not_one_per_event(app, tenant):
    """Waiting for events costs no timer per event (a timeout per wait cost a timer per
    subscriber and event); the one timer still ends the stream at its deadline."""
    use_cases = app.context.use_cases
    viewer = Actor(tenant.workspace_id, "user-viewer", Role.VIEWER)
    runs = [f"run_timer_{n}" for n in range(20)]

    async def scenario() -> tuple[list[Event], int, float]:
        loop = asyncio.get_running_loop()
        armed: list[float] = []
        call_at = loop.call_at

        def counted(when, callback, *args, **kwargs):
            if getattr(callback, "__name__", "") == "wake":
                armed.append(when)
            return call_at(when, callback, *args, **kwargs)

        loop.call_at = counted  # type: ignore[method-assign]
        inbox = stream._Inbox(stream._LoopRelay.of(loop))
        opening = await asyncio.to_thread(use_cases.stream.open_stream, viewer, None, inbox.offer)
        events: list[Event] = []
        began = loop.time()
        try:
            frames = stream._follow(use_cases.stream, viewer, inbox, opening.after, began + 1.0)

            async def commit_one_by_one() -> None:
                for run_id in runs:
                    _commit(use_cases, tenant.workspace_id, [run_id])
                    await asyncio.sleep(0.01)

            committing = asyncio.create_task(commit_one_by_one())
            async for chunk in frames:  # ends by itself at the deadline
                events.extend(parse(chunk.decode()).events)
            await committing
        finally:
            opening.unsubscribe()
        return events, len(armed), loop.time() - began

    events, timers, lasted = asyncio.run(scenario())
    assert [e.data["run_id"] for e in events] == runs and _gap_free(events)
    assert timers == 1
    assert 1.0 <= lasted < 1.5
