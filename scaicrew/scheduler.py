"""Run the scheduler: a thread that ticks every few seconds (in ``serve`` or ``scaicrew
scheduler``). Several schedulers may share one PostgreSQL database: each slot fires once."""

from __future__ import annotations

import logging
import threading

from domain.triggers import TriggerFiring

logger = logging.getLogger("scaicrew.scheduler")


class SchedulerLoop:
    """A daemon thread calling ``firing.tick()`` every ``interval_seconds`` until stopped."""

    def __init__(self, firing: TriggerFiring, interval_seconds: float) -> None:
        self._firing = firing
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scaicrew-scheduler", daemon=True)
        self._thread.start()

    def tick_once(self) -> int:
        """One tick as of now; the number of slots fired (0 after an error, which is logged)."""
        try:
            return len(self._firing.tick())
        except Exception:  # the database may be briefly unavailable; keep the loop alive
            logger.exception("scheduler tick failed")
            return 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.tick_once()
            self._stop.wait(self._interval)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
