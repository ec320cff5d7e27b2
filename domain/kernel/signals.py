"""Signals: what a committed change tells the live stream and the dispatcher.

A use case records its signals in its unit of work (``tx.record(signal)``); the unit of work
writes them to the workspace event log in the same transaction (each gets the workspace's next
sequence number) and, once the transaction has committed, publishes the stored signals here.
So a signal exists exactly when its change does. Subscribers are plain callables; a failing
subscriber is isolated from the publisher. The live stream hub and the in-process dispatcher
subscribe here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

logger = logging.getLogger("scaicrew.signals")


@dataclass(frozen=True)
class Signal:
    """One event of a workspace. ``seq`` and ``at`` are set once it is stored in the log.

    ``context`` holds facts for this process's observers (a run's ``origin``, the W3C
    ``traceparent`` it was queued under): never stored in the log, never sent to clients, so
    absent from signals read back from the log or from another process.
    """

    workspace_id: str
    kind: str
    data: dict[str, Any] = field(hash=False)
    seq: int | None = None
    at: datetime | None = None
    context: dict[str, str] = field(default_factory=dict, hash=False, compare=False, repr=False)


class SignalBus:
    def __init__(self) -> None:
        self._subscribers: list[Callable[[Signal], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Callable[[Signal], None]) -> Callable[[], None]:
        """Add ``callback``; return a function that removes it."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, signals: list[Signal]) -> None:
        """Hand ``signals`` to every subscriber, in order.

        Use cases do not call this: they record signals in their unit of work, which publishes
        them after the commit. It is public for the unit of work and the cross-process listener.
        """
        with self._lock:
            subscribers = list(self._subscribers)
        for signal in signals:
            for callback in subscribers:
                try:
                    callback(signal)
                except Exception:  # a subscriber must never break the publisher
                    logger.exception("signal subscriber failed for %s", signal.kind)
