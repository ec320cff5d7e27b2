"""The live stream (Server-Sent Events) and the tickets that open it from a browser.

The stream handler is ``async``: it checks the role and subscribes in a thread (one domain
call; it may read the database), then returns an ``EventSourceResponse`` whose generator replays
the log after the client's last id and then follows live deliveries. Those arrive from other
threads through a per-event-loop relay (one ``call_soon_threadsafe`` per batch, not per
subscriber). Duplicates (an event both replayed and delivered) are dropped by sequence; a hole
(an out-of-order delivery, a lagging queue) is filled from the log. The response unsubscribes
however it ends: finished lifetime, client gone, failed send, or a HEAD that never streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from domain.kernel import Actor, Signal
from domain.stream import Stream, StreamOpening
from handlers._http import actor, ok, request_header, timestamp, use_cases
from handlers.context import app_context
from handlers.security import current_role

_PAGE = 500  # events per replay read
_QUEUE = 1000  # live events a slow client may lag behind before it is refilled from the log
_RETRY_MILLISECONDS = 2000  # how long an EventSource waits before it reconnects
_LAST_EVENT_ID = re.compile(r"^[0-9]{1,18}$")


async def stream_events(
    token_info: dict[str, Any], last_event_id: int | None = None, max_seconds: int | None = None
) -> Any:
    stream = use_cases().stream
    who = actor(token_info)
    header = request_header("Last-Event-ID")
    # The header wins: an EventSource resends it on every reconnect, with the newest id.
    after = int(header) if header and _LAST_EVENT_ID.match(header) else last_event_id
    settings = stream.hub.settings
    lifetime = (
        settings.max_seconds if max_seconds is None else min(max_seconds, settings.max_seconds)
    )
    inbox = _Inbox(_LoopRelay.of(asyncio.get_running_loop()))
    opening = await run_in_threadpool(stream.open_stream, who, after, inbox.offer)

    async def still_allowed() -> bool:
        return await current_role(token_info) is not None

    recheck = max(app_context().credentials.seconds, 1.0)
    return _StreamResponse(
        _events(stream, who, opening, inbox, lifetime, _Recheck(still_allowed, recheck)),
        on_close=opening.unsubscribe,
        ping=settings.keepalive_seconds,
        headers={"Cache-Control": "no-store"},
    )


def create_stream_ticket(token_info: dict[str, Any]) -> Any:
    ticket, expires_at = use_cases().stream.create_stream_ticket(actor(token_info))
    body = {
        "ticket": ticket,
        "expires_at": timestamp(expires_at),
        "stream_url": f"/v1/stream?ticket={ticket}",
    }
    return ok(body, 201, {"Location": body["stream_url"]})


class _StreamResponse(EventSourceResponse):
    """Unsubscribes however the response ends, even if its generator never started (a HEAD
    request, a client gone before the first event, a failed send)."""

    def __init__(self, *args: Any, on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()

    async def _send_with_timeout(self, send: Any, message: Any) -> None:
        # sse-starlette opens an anyio cancel scope around every send, even with no timeout
        # set (ours: none); with a thousand subscribers that was 15% of a broadcast's CPU.
        if self.send_timeout is None:
            await send(message)
        else:
            await super()._send_with_timeout(send, message)


class _Inbox:
    """Live signals of one stream, handed over from delivering threads to its event loop."""

    def __init__(self, relay: _LoopRelay, capacity: int = _QUEUE) -> None:
        self._relay = relay
        # Signals, and None: the stream's timer (``wake``) asking it to look at the time.
        self.queue: asyncio.Queue[Signal | None] = asyncio.Queue(capacity)
        self.lagged = False
        self.timer_fired = False

    def offer(self, signal: Signal) -> None:
        self._relay.offer(self, signal)

    def wake(self) -> None:
        """The stream's timer fired (on the loop): wake its reader. A full queue wakes it
        anyway; ``timer_fired`` tells it to arm the timer again."""
        self.timer_fired = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)

    def put(self, signal: Signal) -> None:
        try:
            self.queue.put_nowait(signal)
        except asyncio.QueueFull:  # dropped here, read back from the log by the stream
            self.lagged = True


class _LoopRelay:
    """Hands signals to the inboxes of one event loop with one wake-up per batch: with a
    thousand subscribers, a wake-up (a self-pipe write) per subscriber and event dominated
    the delivery time."""

    _relays: dict[asyncio.AbstractEventLoop, _LoopRelay] = {}
    _relays_lock = threading.Lock()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: list[tuple[_Inbox, Signal]] = []

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _LoopRelay:
        with cls._relays_lock:
            for stale in [known for known in cls._relays if known.is_closed()]:
                del cls._relays[stale]
            relay = cls._relays.get(loop)
            if relay is None:
                relay = cls._relays[loop] = cls(loop)
            return relay

    def offer(self, inbox: _Inbox, signal: Signal) -> None:
        with self._lock:
            self._pending.append((inbox, signal))
            if len(self._pending) > 1:
                return  # a drain is already scheduled and will take this one too
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop has closed: its streams are over
            with self._lock:
                self._pending.clear()

    def _drain(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for inbox, signal in pending:
            inbox.put(signal)


@functools.lru_cache(maxsize=256)  # one encoding per event, not one per subscriber
def _frame(signal: Signal) -> bytes:
    data = json.dumps({**signal.data, "at": timestamp(signal.at)}, separators=(",", ":"))
    return f"id: {signal.seq}\nevent: {signal.kind}\ndata: {data}\n\n".encode()


def _reset(after: int) -> bytes:
    data = json.dumps({"reason": "last_event_id_unavailable", "last_event_id": after})
    return f"id: {after}\nevent: reset\ndata: {data}\n\n".encode()


class _Recheck:
    """Whether the stream's credential still has access, asked every ``seconds`` (ADR 0032):
    a removed member's or revoked key's open stream ends within that time."""

    def __init__(self, allowed: Callable[[], Awaitable[bool]], seconds: float) -> None:
        self.allowed = allowed
        self.seconds = seconds


async def _events(
    stream: Stream,
    who: Actor,
    opening: StreamOpening,
    inbox: _Inbox,
    lifetime: float,
    recheck: _Recheck,
) -> AsyncIterator[bytes]:
    deadline = asyncio.get_running_loop().time() + lifetime
    last = opening.after
    try:
        yield f"retry: {_RETRY_MILLISECONDS}\n\n".encode()
        if opening.reset:
            yield _reset(last)
        async for frame, seq in _from_log(stream, who, last, None):  # the replay
            yield frame
            last = seq
        async for frames in _follow(stream, who, inbox, last, deadline, recheck):
            yield frames
    finally:
        opening.unsubscribe()


async def _follow(
    stream: Stream,
    who: Actor,
    inbox: _Inbox,
    last: int,
    deadline: float,
    recheck: _Recheck | None = None,
) -> AsyncIterator[bytes]:
    """The live part of a stream after event ``last``, until ``deadline`` (loop time).

    Frames leave in order, each event once: what the inbox dropped (a lagging client) or
    never got (an out-of-order delivery) is read back from the log.
    """
    loop = asyncio.get_running_loop()
    every = recheck.seconds if recheck is not None else float("inf")
    next_check = loop.time() + every
    # One timer per stream, armed again only when the time it waits for changes (a recheck
    # done) or it fired: a timeout per wait (asyncio.timeout) cost a timer per subscriber
    # and event, 18% of a broadcast's CPU with a thousand subscribers.
    timer: asyncio.TimerHandle | None = None
    try:
        while deadline - loop.time() > 0:
            if recheck is not None and loop.time() >= next_check:
                if not await recheck.allowed():
                    return  # removed, demoted below viewer, or revoked: the stream ends
                next_check = loop.time() + every
            if inbox.lagged:  # live events were dropped: everything committed is in the log
                inbox.lagged = False
                async for frame, seq in _from_log(stream, who, last, None):
                    yield frame
                    last = seq
            wake_at = min(deadline, max(next_check, loop.time() + 0.01))
            if timer is None or inbox.timer_fired or timer.when() != wake_at:
                if timer is not None:
                    timer.cancel()
                inbox.timer_fired = False
                timer = loop.call_at(wake_at, inbox.wake)
            arrived = [await inbox.queue.get()]
            while not inbox.queue.empty():  # a burst goes out in one write
                arrived.append(inbox.queue.get_nowait())
            frames: list[bytes] = []
            for signal in arrived:
                if signal is None:
                    continue  # the timer: the loop looks at the time
                assert signal.seq is not None
                if signal.seq <= last:
                    continue  # replayed already, or delivered twice (own commit and NOTIFY)
                if signal.seq > last + 1:
                    async for frame, seq in _from_log(stream, who, last, signal.seq - 1):
                        frames.append(frame)
                        last = seq
                frames.append(_frame(signal))
                last = signal.seq
            if frames:
                yield b"".join(frames)
    finally:
        if timer is not None:
            timer.cancel()


async def _from_log(
    stream: Stream, who: Actor, after: int, through: int | None
) -> AsyncIterator[tuple[bytes, int]]:
    while True:
        page = await run_in_threadpool(stream.read_stream, who, after, _PAGE, through)
        for signal in page:
            assert signal.seq is not None
            after = signal.seq
            yield _frame(signal), after
        if len(page) < _PAGE:
            return
