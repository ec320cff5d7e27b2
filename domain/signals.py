"""In-process signals published after a commit (``run.changed``, ``approval.*``).

Subscribers are plain callables; a failing subscriber is isolated from the publisher. The live
stream and the in-process dispatcher subscribe here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("scaicrew.signals")


@dataclass(frozen=True)
class Signal:
    workspace_id: str
    kind: str
    data: dict[str, Any] = field(hash=False)


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
        with self._lock:
            subscribers = list(self._subscribers)
        for signal in signals:
            for callback in subscribers:
                try:
                    callback(signal)
                except Exception:  # a subscriber must never break the publisher
                    logger.exception("signal subscriber failed for %s", signal.kind)


def run_changed(workspace_id: str, run_id: str, status: str) -> Signal:
    return Signal(workspace_id, "run.changed", {"run_id": run_id, "status": status})
