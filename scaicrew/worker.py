"""Run the dispatcher: in-process worker threads, or a worker process (``scaicrew worker``)."""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time

from domain.kernel import Signal
from domain.runs import Dispatcher
from domain.subscriptions import SubscriptionDeliverer
from domain.use_cases import UseCases

logger = logging.getLogger("scaicrew.worker")


class WorkerPool:
    """Threads that claim and execute runs until stopped.

    A queued run in this process wakes a worker at once; runs queued by other processes (or
    recovered after a lease expiry) are found by polling every ``poll_seconds``.
    """

    def __init__(
        self,
        use_cases: UseCases,
        threads: int,
        poll_seconds: float = 0.5,
        sweep_seconds: float = 5.0,
    ) -> None:
        self._use_cases = use_cases
        self._count = threads
        self._poll = poll_seconds
        # One thread at a time sweeps deadlines and approval expiry, every ``sweep_seconds``.
        self._sweep_every = sweep_seconds
        self._next_sweep = 0.0
        self._sweep_lock = threading.Lock()
        self._stop = threading.Event()
        # One wake-up event per thread: a thread clears only its own, so a wake-up (a queued
        # run, or ``stop``) reaches a thread that was busy when it came, too.
        self._wakes: list[threading.Event] = []
        self._threads: list[threading.Thread] = []
        # A private generator: the global one is shared with (and watched by) other code,
        # such as Hypothesis in the contract tests.
        self._jitter = random.Random()
        self._unsubscribe = use_cases.signals.subscribe(self._on_signal)

    def _on_signal(self, signal: Signal) -> None:
        if signal.kind == "run.changed" and signal.data.get("status") == "queued":
            self._wake_all()

    def _wake_all(self) -> None:
        for wake in list(self._wakes):
            wake.set()

    def start(self) -> None:
        prefix = f"{socket.gethostname()}:{os.getpid()}"
        for index in range(self._count):
            dispatcher = self._use_cases.dispatcher(f"{prefix}:{index}")
            wake = threading.Event()
            self._wakes.append(wake)
            thread = threading.Thread(
                target=self._loop,
                args=(dispatcher, wake),
                name=f"scaicrew-worker-{index}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def _loop(self, dispatcher: Dispatcher, wake: threading.Event) -> None:
        while not self._stop.is_set():
            try:
                self._sweep(dispatcher)
                worked = dispatcher.run_next()
            except Exception:  # the database may be briefly unavailable; keep the worker alive
                logger.exception("worker loop error")
                worked = False
            if not worked:
                # Jitter, so that idle threads poll at different moments, not in step.
                wake.wait(self._poll * self._jitter.uniform(0.5, 1.5))
                wake.clear()

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

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads, waiting ``timeout`` seconds in all for those between steps. A
        thread still inside a model or tool call is left behind (a daemon, it ends with the
        process): its run keeps its lease, which runs out, and another worker recovers it."""
        self._stop.set()  # before the wake-up: a thread that clears it then sees the flag
        self._wake_all()
        self._unsubscribe()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        self._wakes.clear()


class DeliveryPool:
    """Threads that deliver subscription events until stopped (issue 16).

    A committed event in this process wakes them at once; events of other processes (and due
    retries) are found by polling every ``poll_seconds``.
    """

    def __init__(self, use_cases: UseCases, threads: int, poll_seconds: float = 1.0) -> None:
        self._use_cases = use_cases
        self._count = threads
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._wakes: list[threading.Event] = []
        self._threads: list[threading.Thread] = []
        self._jitter = random.Random()
        self._unsubscribe = use_cases.signals.subscribe(self._on_signal)

    def _on_signal(self, _signal: Signal) -> None:
        for wake in list(self._wakes):
            wake.set()

    def start(self) -> None:
        # Unique per pool: a lease names its holder, and two pools (two apps in one process)
        # must never renew each other's leases.
        prefix = f"{socket.gethostname()}:{os.getpid()}:deliveries-{secrets.token_hex(4)}"
        for index in range(self._count):
            deliverer = self._use_cases.deliverer(f"{prefix}:{index}")
            wake = threading.Event()
            self._wakes.append(wake)
            thread = threading.Thread(
                target=self._loop,
                args=(deliverer, wake),
                name=f"scaicrew-deliveries-{index}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def _loop(self, deliverer: SubscriptionDeliverer, wake: threading.Event) -> None:
        while not self._stop.is_set():
            try:
                worked = deliverer.deliver_next()
            except Exception:  # the database may be briefly unavailable; keep the thread alive
                logger.exception("delivery loop error")
                worked = False
            if not worked:
                wake.wait(self._poll * self._jitter.uniform(0.5, 1.5))
                wake.clear()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads, waiting ``timeout`` seconds in all; a thread inside a POST is left
        to end with the process (its lease runs out and the delivery is made again)."""
        self._stop.set()
        self._on_signal(Signal("", "stop", {}))
        self._unsubscribe()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        self._wakes.clear()
