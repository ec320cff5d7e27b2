"""The live-stream hub of one process: committed signals fanned out to stream subscribers.

Signals reach the hub from the process's own commits (the ``SignalBus``) and, on PostgreSQL,
from every other process through the LISTEN/NOTIFY listener; on SQLite a poll of the event log
stands in for the listener. Whatever the source and arrival order, each workspace channel
delivers its events to its subscribers in sequence order, once each, without holes: an event
at or below the channel's last delivered sequence is a duplicate and dropped; one beyond the
next expected sequence first pulls the missing events from the log (they have committed: on
PostgreSQL the counter row lock orders commits by sequence, SQLite serialises writers).

Subscriber callbacks run on the delivering thread under the channel lock: they must only hand
the signal over (``loop.call_soon_threadsafe``), never block.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.kernel.clock import Clock
from domain.kernel.signals import Signal
from domain.kernel.unit_of_work import Store
from domain.stream.repository import StreamTx

logger = logging.getLogger("scaicrew.stream")

Subscriber = Callable[[Signal], None]

# Most events a gap fill or catch-up reads at once.
_PAGE = 500
_PRUNE_SECONDS = 300.0


@dataclass(eq=False)
class _Channel:
    workspace_id: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    subscribers: list[Subscriber] = field(default_factory=list)
    last: int = 0  # the last sequence delivered (or the log's head when the channel opened)
    closed: bool = False  # removed from the hub: a subscriber that raced for it starts over


@dataclass(frozen=True)
class StreamSettings:
    keepalive_seconds: float
    max_seconds: float
    retention_seconds: float
    poll_seconds: float
    ticket_seconds: float


class StreamHub:
    """Per-workspace channels of live subscribers in this process."""

    def __init__(self, store: Store[StreamTx], clock: Clock, settings: StreamSettings) -> None:
        self._store = store
        self._clock = clock
        self.settings = settings
        self._channels: dict[str, _Channel] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- subscribers -----------------------------------------------------------------------

    def subscribe(self, workspace_id: str, callback: Subscriber) -> Callable[[], None]:
        """Deliver the workspace's events committed from now on to ``callback``.

        Reads the log's head when the workspace's channel opens (blocking: call it from a
        thread). Returns the function that unsubscribes.
        """
        while True:
            with self._lock:
                channel = self._channels.get(workspace_id)
                fresh = channel is None
                if channel is None:
                    channel = _Channel(workspace_id)
                    self._channels[workspace_id] = channel
                    channel.lock.acquire()  # held until ``last`` is known: deliveries wait
            if fresh:
                try:
                    with self._store() as tx:
                        channel.last = tx.events.head(workspace_id)
                except BaseException:
                    channel.closed = True  # no half-opened channel left behind
                    channel.lock.release()
                    with self._lock:
                        if self._channels.get(workspace_id) is channel:
                            del self._channels[workspace_id]
                    raise
                channel.lock.release()
            with channel.lock:
                if not channel.closed:
                    channel.subscribers.append(callback)
                    break

        def unsubscribe() -> None:
            with self._lock, channel.lock:
                if callback in channel.subscribers:
                    channel.subscribers.remove(callback)
                if not channel.subscribers and self._channels.get(workspace_id) is channel:
                    channel.closed = True
                    del self._channels[workspace_id]

        return unsubscribe

    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(c.subscribers) for c in self._channels.values())

    # -- sources ---------------------------------------------------------------------------

    def on_signal(self, signal: Signal) -> None:
        """Take one stored signal (from the bus or the listener), from any thread."""
        if signal.seq is None:
            return  # never stored: not a stream event
        with self._lock:
            channel = self._channels.get(signal.workspace_id)
        if channel is None:
            return
        with channel.lock:
            if signal.seq <= channel.last:
                return
            if signal.seq > channel.last + 1:
                self._fill(channel, through=signal.seq - 1)
            self._deliver(channel, signal)

    def on_range(self, workspace_id: str, through: int) -> None:
        """Events up to ``through`` were committed (too large to travel in a notification)."""
        with self._lock:
            channel = self._channels.get(workspace_id)
        if channel is None:
            return
        with channel.lock:
            self._fill(channel, through=through)

    def catch_up(self) -> None:
        """Read every open channel's new events from the log: after a listener (re)connect,
        and periodically where no listener exists (SQLite shared by several processes)."""
        with self._lock:
            channels = list(self._channels.values())
        for channel in channels:
            with channel.lock:
                self._fill(channel, through=None)

    def _fill(self, channel: _Channel, through: int | None) -> None:
        while through is None or channel.last < through:
            with self._store() as tx:
                missing = tx.events.read(channel.workspace_id, channel.last, _PAGE, through)
            for signal in missing:
                self._deliver(channel, signal)
            if len(missing) < _PAGE:
                if through is not None and channel.last < through:
                    channel.last = through  # pruned meanwhile: nothing more to deliver
                return

    @staticmethod
    def _deliver(channel: _Channel, signal: Signal) -> None:
        assert signal.seq is not None
        channel.last = signal.seq
        for callback in channel.subscribers:
            try:
                callback(signal)
            except Exception:  # one broken subscriber must not starve the others
                logger.exception("stream subscriber failed")

    # -- upkeep ----------------------------------------------------------------------------

    def start(self, *, poll: bool) -> None:
        """Start the upkeep thread: prune the log and expired tickets; with ``poll``, also
        catch up every ``poll_seconds`` (no cross-process notifications on this database)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._upkeep, args=(poll,), name="scaicrew-stream-upkeep", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _upkeep(self, poll: bool) -> None:
        interval = self.settings.poll_seconds if poll else 30.0
        next_prune = time.monotonic()
        while not self._stop.wait(interval):
            try:
                if poll:
                    self.catch_up()
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + _PRUNE_SECONDS
                    self.prune(self._clock.now())
            except Exception:  # the database may be briefly unavailable; try again later
                logger.warning("stream upkeep failed", exc_info=True)

    def prune(self, now: datetime) -> None:
        """Delete events older than the retention and expired tickets."""
        cutoff = now - timedelta(seconds=self.settings.retention_seconds)
        with self._store(write=True) as tx:
            tx.events.prune(cutoff)
            tx.events.prune_tickets(now)
            tx.commit()
