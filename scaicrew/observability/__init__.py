"""Operability: structured logs, Prometheus metrics, OpenTelemetry traces (ADRs 0039-0041).

``Observability.from_settings`` builds what the settings turn on; the composition root wires
it in: ``ObservabilityMiddleware`` outermost, the measured ports around the adapters, the
signal subscribers (run-transition log lines, run metrics, run spans). With metrics and
tracing off, a request costs one log call (skipped below ``INFO``) and two clock reads.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.kernel import Signal, bind_trace_producer, unbind_trace_producer
from handlers.tracing import RequestFacts, begin_request
from scaicrew.adapters.pg_listener import LISTENER_THREAD
from scaicrew.observability.logs import configure_logging, log_request, log_run_transition
from scaicrew.observability.metrics import Metrics
from scaicrew.observability.tracing import Tracing, otlp_provider, trace_id_of
from scaicrew.settings import Settings

__all__ = [
    "Metrics",
    "Observability",
    "ObservabilityMiddleware",
    "Tracing",
    "configure_logging",
]

_WEBHOOK_OPERATION = "receiveWebhook"
_UNMATCHED = "unmatched"  # no operation: unknown path or method (router 404/405)
_request_log = logging.getLogger("scaicrew.request")


class Observability:
    """What one process measures and traces; either part may be off (``None``)."""

    def __init__(
        self,
        *,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
        metrics_path: str | None = "/metrics",
    ) -> None:
        self.metrics = metrics
        self.tracing = tracing
        #: Where the API port serves metrics (None: not on the API port).
        self.metrics_path = metrics_path if metrics is not None else None

    @classmethod
    def from_settings(cls, settings: Settings, tracer_provider: Any = None) -> Observability:
        group = settings.observability
        metrics = Metrics() if group.metrics_enabled else None
        if tracer_provider is None and group.otlp_endpoint:
            tracer_provider = otlp_provider(group.otlp_endpoint)
        tracing = Tracing(tracer_provider) if tracer_provider is not None else None
        path = None if group.metrics_port else "/metrics"
        return cls(metrics=metrics, tracing=tracing, metrics_path=path)

    def on_signal(self, signal: Signal) -> None:
        """Subscribed to the signal bus: log, count and trace run transitions committed by this
        process (the PostgreSQL listener republishes other processes' signals on the bus from
        its own thread: those are theirs to count)."""
        if signal.kind != "run.changed" or threading.current_thread().name == LISTENER_THREAD:
            return
        if self.tracing is not None:
            self.tracing.on_signal(signal)
        if self.metrics is not None:
            self.metrics.on_signal(signal)
        log_run_transition(signal, trace_id_of(trace.get_current_span()))

    def serve_metrics_port(self, port: int, host: str = "0.0.0.0") -> Any:
        """Serve ``/metrics`` from a thread on its own port; return the server (``shutdown()``
        stops it), or None when metrics are off."""
        from prometheus_client import start_http_server

        if self.metrics is None:
            return None
        server, _thread = start_http_server(port, addr=host, registry=self.metrics.registry)
        return server

    def shutdown(self) -> None:
        if self.tracing is not None:
            self.tracing.shutdown()


class ObservabilityMiddleware:
    """Outermost: times every HTTP request, names it by operationId once routed, logs one line,
    counts it, traces it; serves ``GET /metrics`` when metrics are on the API port."""

    def __init__(
        self, app: ASGIApp, observability: Observability, operation_ids: dict[str, str]
    ) -> None:
        """``operation_ids``: the contract's operationId of each handler's dotted path (what
        the router records)."""
        self.app = app
        self.operation_ids = operation_ids
        self.metrics = observability.metrics
        self.tracing = observability.tracing
        self.metrics_path = observability.metrics_path
        self._queue_context = None if self.tracing is None else self.tracing.queue_context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.metrics_path is not None and scope["path"] == self.metrics_path:
            if scope["method"] in ("GET", "HEAD"):
                await self._serve_metrics(send)
                return
        if self.metrics is None and self.tracing is None:
            if not _request_log.isEnabledFor(logging.INFO):
                await self.app(scope, receive, send)  # nothing to observe: no cost
                return
        started = time.perf_counter()
        facts = RequestFacts()
        begin_request(facts)
        # Shared with every copy of the scope below us: the router writes the operationId here.
        extensions = scope.setdefault("extensions", {})
        answer = {"status": 500, "replayed": False}
        count_replays = self.metrics is not None and "/webhooks/" in scope["path"]

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                for key, value in message.get("headers", ()) if count_replays else ():
                    if key.lower() == b"idempotent-replayed" and value == b"true":
                        answer["replayed"] = True
            await send(message)

        span = token = producer = None
        if self.tracing is not None:
            span, token = self._start_span(scope, facts)
            producer = bind_trace_producer(self._queue_context)
        try:
            await self.app(scope, receive, observed_send)
        finally:
            duration = time.perf_counter() - started
            status = int(answer["status"])
            routing = extensions.get("connexion_routing") or {}
            handler = routing.get("operation_id")
            operation = self.operation_ids.get(handler, _UNMATCHED) if handler else _UNMATCHED
            if span is not None:
                if span.is_recording():
                    span.update_name(operation)
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                span.end()
                otel_context.detach(token)
            if producer is not None:
                unbind_trace_producer(producer)
            if self.metrics is not None:
                self.metrics.observe_request(operation, status, duration)
                if operation == _WEBHOOK_OPERATION:
                    self.metrics.observe_webhook(status, bool(answer["replayed"]))
            if _request_log.isEnabledFor(logging.INFO):
                log_request(
                    method=scope["method"],
                    path=scope["path"],
                    operation_id=operation,
                    status=status,
                    duration=duration,
                    trace_id=facts.trace_id,
                    workspace_id=facts.workspace_id,
                )

    def _start_span(self, scope: Scope, facts: RequestFacts) -> tuple[Any, Any]:
        assert self.tracing is not None
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", ())
            if key in (b"traceparent", b"tracestate")
        }
        parent = extract(carrier) if carrier else None
        span = self.tracing.tracer.start_span(scope["method"], context=parent, kind=SpanKind.SERVER)
        if span.is_recording():
            span.set_attribute("http.request.method", scope["method"])
            span.set_attribute("url.path", scope["path"])
        facts.suggested_trace_id = trace_id_of(span)
        token = otel_context.attach(trace.set_span_in_context(span))
        return span, token

    async def _serve_metrics(self, send: Send) -> None:
        assert self.metrics is not None
        # The shared gauges read the database: not on the event loop.
        body = await run_in_threadpool(generate_latest, self.metrics.registry)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", CONTENT_TYPE_LATEST.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
