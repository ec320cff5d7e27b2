"""Run the scheduler: a thread that ticks every few seconds (in ``serve`` or ``scaicrew
scheduler``). Several schedulers may share one PostgreSQL database: each slot fires once."""

from __future__ import annotations

import logging
import threading
from contextlib import nullcontext

from domain.triggers import TriggerFiring
from scaicrew.observability.tracing import Tracing

logger = logging.getLogger("scaicrew.scheduler")


class SchedulerLoop:
    """A daemon thread calling ``firing.tick()`` every ``interval_seconds`` until stopped;
    with ``tracing``, each tick is a ``scheduler.tick`` span and the trace of the runs it
    queues."""

    def __init__(
        self, firing: TriggerFiring, interval_seconds: float, tracing: Tracing | None = None
    ) -> None:
        self._firing = firing
        self._interval = interval_seconds
        self._tracing = tracing
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scaicrew-scheduler", daemon=True)
        self._thread.start()

    def tick_once(self) -> int:
        """One tick as of now; the number of slots fired (0 after an error, which is logged)."""
        traced = self._tracing.background("scheduler.tick") if self._tracing else nullcontext()
        try:
            with traced as span:
                fired = len(self._firing.tick())
                if span is not None and span.is_recording():
                    span.set_attribute("scaicrew.slots_fired", fired)
                return fired
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
