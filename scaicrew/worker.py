"""Run the dispatcher and the subscription deliverer: in-process threads of the API server,
or of a worker process (``scaicrew worker``)."""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable

from domain.kernel import Signal
from domain.runs import Dispatcher
from domain.stream import announces_work
from domain.subscriptions import SubscriptionDeliverer
from domain.use_cases import UseCases

logger = logging.getLogger("scaicrew.worker")


class _PollingThreads:
    """Threads that each repeat one step (claim a piece of work and do it) until stopped.

    A thread whose step found nothing waits ``poll_seconds`` (with jitter, so idle threads
    poll at different moments, not in step) or until a signal of this process wakes it: work
    queued here is picked up at once, work of other processes within a poll.
    """

    #: Names the threads (``scaicrew-<kind>-<n>``) and the loop's log messages.
    kind = "worker"

    def __init__(self, use_cases: UseCases, threads: int, poll_seconds: float) -> None:
        self._use_cases = use_cases
        self._count = threads
        self._poll = poll_seconds
        self._stop = threading.Event()
        # One wake-up event per thread: a thread clears only its own, so a wake-up (new work,
        # or ``stop``) reaches a thread that was busy when it came, too.
        self._wakes: list[threading.Event] = []
        self._threads: list[threading.Thread] = []
        # A private generator: the global one is shared with (and watched by) other code,
        # such as Hypothesis in the contract tests.
        self._jitter = random.Random()
        self._unsubscribe = use_cases.signals.subscribe(self._on_signal)

    def _on_signal(self, signal: Signal) -> None:
        if self._wants(signal):
            self._wake_all()

    def _wants(self, signal: Signal) -> bool:
        """Whether ``signal`` may mean new work for these threads."""
        return True

    def _wake_all(self) -> None:
        for wake in list(self._wakes):
            wake.set()

    def _step_for(self, holder: str) -> Callable[[], bool]:
        """One thread's step, claiming work as ``holder``; True when it did some."""
        raise NotImplementedError

    def _holder_prefix(self) -> str:
        # Unique per pool: a lease names its holder, and two pools (two apps in one process)
        # must never renew each other's leases.
        return f"{socket.gethostname()}:{os.getpid()}:{self.kind}-{secrets.token_hex(4)}"

    def start(self) -> None:
        prefix = self._holder_prefix()
        for index in range(self._count):
            wake = threading.Event()
            self._wakes.append(wake)
            thread = threading.Thread(
                target=self._loop,
                args=(self._step_for(f"{prefix}:{index}"), wake),
                name=f"scaicrew-{self.kind}-{index}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def _loop(self, step: Callable[[], bool], wake: threading.Event) -> None:
        while not self._stop.is_set():
            try:
                worked = step()
            except Exception:  # the database may be briefly unavailable; keep the thread alive
                logger.exception("%s loop error", self.kind)
                worked = False
            if not worked:
                wake.wait(self._poll * self._jitter.uniform(0.5, 1.5))
                wake.clear()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads, waiting ``timeout`` seconds in all for those between steps. A
        thread still inside a step (a model, tool or delivery call) is left behind (a daemon,
        it ends with the process): its work keeps its lease, which runs out, and another
        thread recovers it."""
        self._stop.set()  # before the wake-up: a thread that clears it then sees the flag
        self._wake_all()
        self._unsubscribe()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        self._wakes.clear()


class WorkerPool(_PollingThreads):
    """Threads that claim and execute runs until stopped; between runs, one thread at a time
    sweeps deadlines and approval expiry every ``sweep_seconds``."""

    kind = "worker"

    def __init__(
        self,
        use_cases: UseCases,
        threads: int,
        poll_seconds: float = 0.5,
        sweep_seconds: float = 5.0,
    ) -> None:
        super().__init__(use_cases, threads, poll_seconds)
        self._sweep_every = sweep_seconds
        self._next_sweep = 0.0
        self._sweep_lock = threading.Lock()

    def _wants(self, signal: Signal) -> bool:
        return announces_work(signal)

    def wake(self) -> None:
        """New work may be there (a run was queued, ``WORK_CHANNEL``): every idle thread
        looks now instead of at its next poll."""
        self._wake_all()

    def _step_for(self, holder: str) -> Callable[[], bool]:
        dispatcher = self._use_cases.dispatcher(holder)

        def step() -> bool:
            self._sweep(dispatcher)
            return dispatcher.run_next()

        return step

    def _sweep(self, dispatcher: Dispatcher) -> None:
        """Sweep when it is due and no other thread of this process is sweeping."""
        now = time.monotonic()
        if now < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._next_sweep = now + self._sweep_every
            dispatcher.sweep()
        finally:
            self._sweep_lock.release()


class DeliveryPool(_PollingThreads):
    """Threads that deliver subscription events until stopped (issue 16); any committed
    event of this process wakes them, while some subscription is enabled."""

    kind = "deliveries"

    def __init__(self, use_cases: UseCases, threads: int, poll_seconds: float = 1.0) -> None:
        super().__init__(use_cases, threads, poll_seconds)
        # Whether any subscription was enabled when last looked (at most once a poll). With
        # none, a wake-up per committed event was a query per event for nothing: 7% of a busy
        # run server's CPU. The first events after the first subscription wait for a poll.
        self._subscribed = True
        self._look_again_at = 0.0
        #: Told whether some subscription is enabled, at every look (once a poll) and after
        #: each delivery: a worker process listens to every committed event only while it has
        #: something to deliver (ADR 0072). Set it before ``start``.
        self.on_subscribed: Callable[[bool], None] | None = None

    def _wants(self, signal: Signal) -> bool:
        return self._subscribed

    def _step_for(self, holder: str) -> Callable[[], bool]:
        deliverer: SubscriptionDeliverer = self._use_cases.deliverer(holder)

        def step() -> bool:
            if deliverer.deliver_next():
                self._set_subscribed(True)
                return True
            now = time.monotonic()
            if now >= self._look_again_at:
                self._look_again_at = now + self._poll
                self._set_subscribed(deliverer.anyone_subscribed())
            return False

        return step

    def _set_subscribed(self, subscribed: bool) -> None:
        self._subscribed = subscribed
        if self.on_subscribed is not None:  # told every time (it ignores no change): with
            self.on_subscribed(subscribed)  # several threads, a stale answer lasts one poll
