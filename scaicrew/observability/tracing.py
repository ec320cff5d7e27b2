"""OpenTelemetry traces (ADR 0040): on only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (or a
test hands in its own tracer provider).

- a span per request, named by its operationId, child of an incoming W3C ``traceparent``;
- a span per SQL statement (``db <VERB>``), per model call and per tool call, children of
  whatever span is current; HTTP tools and tool servers get ``traceparent``;
- runs: when a request (or a run) queues a run, a short ``run.queue`` span records it; the
  dispatcher thread that claims the run in this process opens ``run.execute`` as its child (and
  linked to it), so the run's steps join the trace of the request that queued it. A run claimed
  by another process (``scaicrew worker``) starts its own trace there.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from sqlalchemy import event
from sqlalchemy.engine import Engine

from domain.kernel import Signal

_QUEUED_KEPT = 10_000  # queued runs whose queuing span is remembered for their dispatcher


def otlp_provider(endpoint: str) -> TracerProvider:
    """A provider exporting over OTLP/HTTP in batches; the standard ``OTEL_*`` variables
    (sampler, headers, service name...) apply as the SDK reads them."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": "scaicrew"}))
    endpoint = endpoint.rstrip("/")
    if not endpoint.endswith("/v1/traces"):
        endpoint += "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


class Tracing:
    """The tracer and the run-span bookkeeping of one app (or worker process)."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("scaicrew")
        self._queued: OrderedDict[str, SpanContext] = OrderedDict()
        self._lock = threading.Lock()
        self._local = threading.local()

    # -- database ------------------------------------------------------------------------

    def instrument_engine(self, engine: Engine) -> None:
        """A span per SQL statement run while a span is current (statement text, never its
        parameters)."""
        tracer = self.tracer

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            if not trace.get_current_span().is_recording():
                return
            verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
            span = tracer.start_span(
                f"db {verb}",
                kind=SpanKind.CLIENT,
                attributes={
                    "db.system": engine.dialect.name,
                    "db.statement": statement[:2000],
                },
            )
            conn.info.setdefault("_scaicrew_spans", []).append(span)

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn: Any, *_: Any) -> None:
            spans = conn.info.get("_scaicrew_spans")
            if spans:
                spans.pop().end()

        @event.listens_for(engine, "handle_error")
        def _error(context: Any) -> None:
            conn = context.connection
            spans = conn.info.get("_scaicrew_spans") if conn is not None else None
            if spans:
                span = spans.pop()
                span.set_status(Status(StatusCode.ERROR, type(context.original_exception).__name__))
                span.end()

    # -- runs ----------------------------------------------------------------------------

    def on_signal(self, signal: Signal) -> None:
        if signal.kind != "run.changed":
            return
        run_id = str(signal.data.get("run_id", ""))
        status = str(signal.data.get("status", ""))
        if status == "queued":
            self._queued_run(run_id, signal.workspace_id)
        elif status == "running":
            if threading.current_thread().name.startswith("scaicrew-worker"):
                self._start_run(run_id)
        else:
            self._end_run(run_id, status)

    def _queued_run(self, run_id: str, workspace_id: str) -> None:
        if not trace.get_current_span().is_recording():
            return  # not queued by a traced request or run (e.g. another process's signal)
        span = self.tracer.start_span(
            "run.queue",
            kind=SpanKind.PRODUCER,
            attributes={"scaicrew.run_id": run_id, "scaicrew.workspace_id": workspace_id},
        )
        span.end()
        with self._lock:
            self._queued[run_id] = span.get_span_context()
            while len(self._queued) > _QUEUED_KEPT:
                self._queued.popitem(last=False)

    def _start_run(self, run_id: str) -> None:
        self._end_run(run_id, "")  # a span left open by an earlier claim in this thread
        with self._lock:
            queued = self._queued.pop(run_id, None)
        parent = None
        links: list[Link] = []
        if queued is not None:
            parent = trace.set_span_in_context(NonRecordingSpan(queued))
            links.append(Link(queued))
        span = self.tracer.start_span(
            "run.execute",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={"scaicrew.run_id": run_id},
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        self._local.active = (run_id, span, token)

    def _end_run(self, run_id: str, status: str) -> None:
        active = getattr(self._local, "active", None)
        if active is None or (status and active[0] != run_id):
            return
        _, span, token = active
        self._local.active = None
        if status:
            span.set_attribute("scaicrew.run_status", status)
            if status == "failed":
                span.set_status(Status(StatusCode.ERROR))
        span.end()
        otel_context.detach(token)

    def shutdown(self) -> None:
        shutdown = getattr(self.provider, "shutdown", None)
        if callable(shutdown):
            shutdown()


def trace_id_of(span: Any) -> str:
    """The 32-hex trace id of ``span``, or "" when it is not valid."""
    span_context = span.get_span_context()
    if not span_context.is_valid:
        return ""
    return format(span_context.trace_id, "032x")
