"""Prometheus metrics of one process (ADR 0039): a private registry per app, served at
``/metrics`` (or on ``METRICS_PORT``).

Labels are bounded: operationIds (a closed set from the contract), status classes, run
statuses, outcomes, tool kinds, budget states. Never an id, a path or a workspace id.

Counters and histograms count what this process did. The gauges that describe shared state
(queue depth, oldest queued run, pending approvals) are read from the database when scraped,
so every process reports the same value: aggregate them with ``max``, the rest with ``sum``.
(Queue, approvals and subscription backlog: ADR 0039; the origin labels: ADR 0048.)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from domain.budgets import BudgetState
from domain.database import Database
from domain.kernel import Signal
from domain.persistence import tables

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RUN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
_FINISHED = frozenset({"succeeded", "failed", "cancelled"})
_TRACKED_RUNS = 10_000  # running runs whose start time is kept, for their duration


class Metrics:
    """Every series, registered on ``self.registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "scaicrew_http_requests",
            "HTTP requests answered, by operationId and status class.",
            ("operation", "status_class"),
            registry=r,
        )
        self.request_seconds = Histogram(
            "scaicrew_http_request_duration_seconds",
            "Time to answer an HTTP request (a stream: its whole life), by operationId.",
            ("operation",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.run_transitions = Counter(
            "scaicrew_run_transitions",
            "Run status changes committed by this process, by new status (queued, running, "
            "waiting_approval, succeeded, failed, cancelled) and the run's origin.",
            ("status", "origin"),
            registry=r,
        )
        self.runs_started = Counter(
            "scaicrew_runs_started",
            "Runs queued for the first time by this process, by origin (manual, schedule, "
            "webhook, handoff).",
            ("origin",),
            registry=r,
        )
        self.runs_finished = Counter(
            "scaicrew_runs_finished",
            "Runs this process finished, by origin and outcome (succeeded, failed, cancelled).",
            ("origin", "outcome"),
            registry=r,
        )
        self.run_seconds = Histogram(
            "scaicrew_run_duration_seconds",
            "From claim to finish (or to waiting for approval) of runs this process executed, "
            "by origin and outcome.",
            ("origin", "outcome"),
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.model_calls = Counter(
            "scaicrew_model_calls",
            "Language model calls, by outcome (ok, error).",
            ("outcome",),
            registry=r,
        )
        self.model_seconds = Histogram(
            "scaicrew_model_call_duration_seconds",
            "Language model call latency.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tool_calls = Counter(
            "scaicrew_tool_calls",
            "External tool calls (http: the built-in HTTP tools; mcp: tool servers), by "
            "outcome (ok, error).",
            ("kind", "outcome"),
            registry=r,
        )
        self.tool_seconds = Histogram(
            "scaicrew_tool_call_duration_seconds",
            "External tool call latency, by kind.",
            ("kind",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "scaicrew_webhook_deliveries",
            "Webhook deliveries, by result (accepted, replayed, refused).",
            ("result",),
            registry=r,
        )
        self._started: OrderedDict[str, float] = OrderedDict()
        # (operation, status class) -> the two children: ``labels()`` validates and locks on
        # every call, and this is the request path.
        self._request_series: dict[tuple[str, int], tuple[Any, Any]] = {}
        for status_class in ("2xx", "4xx", "5xx"):
            self.requests.labels("getHealth", status_class)
        for result in ("accepted", "replayed", "refused"):
            self.webhook_deliveries.labels(result)

    def observe_request(self, operation: str, status: int, seconds: float) -> None:
        key = (operation, status // 100)
        series = self._request_series.get(key)
        if series is None:
            series = (
                self.requests.labels(operation, f"{status // 100}xx"),
                self.request_seconds.labels(operation),
            )
            self._request_series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def observe_webhook(self, status: int, replayed: bool) -> None:
        if status < 300:
            result = "replayed" if replayed else "accepted"
        else:
            result = "refused"
        self.webhook_deliveries.labels(result).inc()

    def on_signal(self, signal: Signal) -> None:
        if signal.kind != "run.changed":
            return
        status = str(signal.data.get("status", ""))
        origin = signal.context.get("origin", "unknown")
        run_id = str(signal.data.get("run_id", ""))
        self.run_transitions.labels(status, origin).inc()
        if status == "queued":
            if signal.context.get("first"):
                self.runs_started.labels(origin).inc()
            return
        if status == "running":
            self._started[run_id] = time.monotonic()
            while len(self._started) > _TRACKED_RUNS:
                self._started.popitem(last=False)
            return
        if status in _FINISHED:
            self.runs_finished.labels(origin, status).inc()
        started = self._started.pop(run_id, None)
        if started is not None:
            self.run_seconds.labels(origin, status).observe(time.monotonic() - started)

    def watch(self, database: Database, subscribers: Callable[[], int]) -> None:
        """Add the gauges read when scraped: shared state from ``database``, the pool, and
        this process's stream subscribers."""
        self.registry.register(_StateCollector(database, subscribers))


class _StateCollector(Collector):
    def __init__(self, database: Database, subscribers: Callable[[], int]) -> None:
        self._database = database
        self._subscribers = subscribers

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = datetime.now(UTC)
        queued, oldest_queued = self._count_and_oldest(tables.runs, "queued")
        pending, oldest_pending = self._count_and_oldest(tables.approvals, "pending")
        yield GaugeMetricFamily(
            "scaicrew_runs_queued", "Runs waiting for a dispatcher (shared).", queued
        )
        yield GaugeMetricFamily(
            "scaicrew_runs_oldest_queued_age_seconds",
            "Age of the oldest queued run, 0 when none (shared).",
            _age(now, oldest_queued),
        )
        yield GaugeMetricFamily(
            "scaicrew_approvals_pending", "Approvals waiting for a decision (shared).", pending
        )
        yield GaugeMetricFamily(
            "scaicrew_approvals_oldest_pending_age_seconds",
            "Age of the oldest pending approval, 0 when none (shared).",
            _age(now, oldest_pending),
        )
        backlog, oldest_backlog = self._count_and_oldest(tables.subscription_deliveries, "pending")
        yield GaugeMetricFamily(
            "scaicrew_subscription_deliveries_pending",
            "Outbound subscription deliveries not yet delivered nor given up (shared).",
            backlog,
        )
        yield GaugeMetricFamily(
            "scaicrew_subscription_deliveries_oldest_pending_age_seconds",
            "Age of the oldest pending subscription delivery, 0 when none (shared).",
            _age(now, oldest_backlog),
        )
        yield GaugeMetricFamily(
            "scaicrew_stream_subscribers",
            "Live-stream subscribers connected to this process.",
            self._subscribers(),
        )
        budgets = GaugeMetricFamily(
            "scaicrew_budgets",
            "Budgets by their state in the current period (shared).",
            labels=["state"],
        )
        for state, count in self._budget_states(now).items():
            budgets.add_metric([state], count)
        yield budgets
        pool = self._database.engine.pool
        checked_out = getattr(pool, "checkedout", None)
        size = getattr(pool, "size", None)
        if callable(checked_out):
            yield GaugeMetricFamily(
                "scaicrew_db_pool_checked_out",
                "Database connections in use in this process.",
                checked_out(),
            )
        if callable(size):
            yield GaugeMetricFamily(
                "scaicrew_db_pool_size", "Database pool size of this process.", size()
            )

    def _budget_states(self, now: datetime) -> dict[str, int]:
        counts = {state.value: 0 for state in BudgetState}
        with self._database() as tx:
            for budget, usage in tx.budgets.states(now):
                state = BudgetState.OK if usage is None else usage.state(budget)
                counts[state.value] += 1
        return counts

    def _count_and_oldest(self, table: sa.Table, status: str) -> tuple[int, datetime | None]:
        query = sa.select(sa.func.count(), sa.func.min(table.c.created_at)).where(
            table.c.status == status
        )
        with self._database.engine.connect() as connection:
            count, oldest = connection.execute(query).one()
        return int(count), oldest


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())
