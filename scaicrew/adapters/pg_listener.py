"""LISTEN/NOTIFY on PostgreSQL: committed events of every process reach this one.

One thread per process holds a dedicated psycopg 3 connection (autocommit) listening on the
event channel. Every notification is decoded and handed to ``on_signals`` (the process's signal
bus: the live-stream hub and the dispatcher's wake-up both subscribe there). On every
(re)connect ``on_connect`` runs after LISTEN is active, so whatever was committed while the
connection was down is read from the event log: nothing is missed, duplicates are dropped by
sequence downstream. A lost connection is retried with a capped backoff.

A process that only needs to hear of queued runs (a ``scaicrew worker`` without subscriptions
to deliver) listens on the work channel instead (``on_work``, ADR 0072), and on the event
channel only while ``want_events(True)``: every committed event woke every listening process
(its backend and its listener thread), three notifications per run.

While idle the thread waits on the connection's socket and on a wake-up socket that ``stop``
and ``want_events`` write to, so stopping (every app shutdown, every test's lifespan) returns
at once instead of after the next poll.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

from domain.kernel import Signal
from domain.stream import NOTIFY_CHANNEL, WORK_CHANNEL, decode_notification

logger = logging.getLogger("scaicrew.listener")
#: The listener thread's name: signals it republishes were committed by another process.
LISTENER_THREAD = "scaicrew-listener"

_IDLE_SECONDS = 5.0  # a safety net only: ``stop`` wakes the idle thread through a socket
_MAX_BACKOFF = 10.0


def conninfo(database_url: str) -> str:
    """The libpq connection string of a SQLAlchemy ``postgresql+psycopg://`` URL."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PgListener:
    def __init__(
        self,
        database_url: str,
        on_signals: Callable[[list[Signal]], None],
        on_range: Callable[[str, int], None],
        on_connect: Callable[[], None],
        *,
        on_work: Callable[[], None] | None = None,
        events: bool = True,
    ) -> None:
        """``on_work``: called when a run is queued (the work channel is listened to);
        ``events``: whether to listen on the event channel from the start."""
        self._conninfo = conninfo(database_url)
        self._on_signals = on_signals
        self._on_range = on_range
        self._on_connect = on_connect
        self._on_work = on_work
        self._events = events  # wanted; the thread LISTENs or UNLISTENs to match
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None

    def start(self) -> None:
        self._wake = socket.socketpair()  # closed by the thread when it ends
        self._thread = threading.Thread(
            target=self._run, args=self._wake, name=LISTENER_THREAD, daemon=True
        )
        self._thread.start()

    def want_events(self, wanted: bool) -> None:
        """Listen on the event channel (every committed event) or stop listening there."""
        if wanted != self._events:
            self._events = wanted
            self._poke()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._poke()
        if self._thread is not None:
            self._thread.join(timeout)

    def _poke(self) -> None:
        if self._wake is not None:
            try:
                self._wake[1].send(b"x")
            except OSError:  # the thread has ended and closed it
                pass

    def _run(self, wake_reader: socket.socket, wake_writer: socket.socket) -> None:
        try:
            self._listen(wake_reader)
        finally:
            wake_reader.close()
            wake_writer.close()

    def _listen(self, wake: socket.socket) -> None:
        wake.setblocking(False)
        backoff = 0.25
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    if self._on_work is not None:
                        conn.execute(f"LISTEN {WORK_CHANNEL}")
                    events = self._events
                    if events:
                        conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.connected.set()
                    backoff = 0.25
                    self._on_connect()
                    while not self._stop.is_set():
                        if self._events != events:  # ``want_events`` changed it
                            events = self._events
                            conn.execute(f"{'' if events else 'UN'}LISTEN {NOTIFY_CHANNEL}")
                        # Whatever has arrived (or was buffered by LISTEN), without waiting.
                        for note in conn.notifies(timeout=0):
                            self._handle(note.channel, note.payload)
                        if not self._stop.is_set():
                            # Until the connection has data or ``_poke`` writes to ``wake``.
                            watched = [conn.fileno(), wake]
                            ready, _, _ = select.select(watched, [], [], _IDLE_SECONDS)
                            if wake in ready:
                                _drain(wake)
            except Exception:  # the database restarted or the network broke: reconnect
                logger.warning("event listener lost its connection; reconnecting", exc_info=True)
            self.connected.clear()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def _handle(self, channel: str, payload: str) -> None:
        if channel == WORK_CHANNEL:
            if self._on_work is not None:
                self._on_work()
            return
        try:
            workspace_id, signals, through = decode_notification(payload)
        except (ValueError, KeyError, TypeError, IndexError):
            logger.warning("ignored a malformed notification on %s", NOTIFY_CHANNEL)
            return
        if through is not None:
            self._on_range(workspace_id, through)
        else:
            self._on_signals(signals)


def _drain(wake: socket.socket) -> None:
    """Read what ``_poke`` wrote (non-blocking), so that the next wait waits."""
    try:
        while wake.recv(64):
            pass
    except BlockingIOError:
        pass
