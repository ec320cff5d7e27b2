"""LISTEN/NOTIFY on PostgreSQL: committed events of every process reach this one.

One thread per process holds a dedicated psycopg 3 connection (autocommit) listening on the
event channel. Every notification is decoded and handed to ``on_signals`` (the process's signal
bus: the live-stream hub and the dispatcher's wake-up both subscribe there). On every
(re)connect ``on_connect`` runs after LISTEN is active, so whatever was committed while the
connection was down is read from the event log: nothing is missed, duplicates are dropped by
sequence downstream. A lost connection is retried with a capped backoff.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

from domain.kernel import Signal
from domain.stream import NOTIFY_CHANNEL, decode_notification

logger = logging.getLogger("scaicrew.listener")

_POLL_SECONDS = 0.5  # how often the thread looks at its stop flag while idle
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
    ) -> None:
        self._conninfo = conninfo(database_url)
        self._on_signals = on_signals
        self._on_range = on_range
        self._on_connect = on_connect
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scaicrew-listener", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = 0.25
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.connected.set()
                    backoff = 0.25
                    self._on_connect()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=_POLL_SECONDS):
                            self._handle(note.payload)
            except Exception:  # the database restarted or the network broke: reconnect
                logger.warning("event listener lost its connection; reconnecting", exc_info=True)
            self.connected.clear()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def _handle(self, payload: str) -> None:
        try:
            workspace_id, signals, through = decode_notification(payload)
        except (ValueError, KeyError, TypeError, IndexError):
            logger.warning("ignored a malformed notification on %s", NOTIFY_CHANNEL)
            return
        if through is not None:
            self._on_range(workspace_id, through)
        else:
            self._on_signals(signals)
