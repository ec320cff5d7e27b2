"""OpenTelemetry traces (ADR 0040): on only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (or a
test hands in its own tracer provider).

- a span per request, named by its operationId, child of an incoming W3C ``traceparent``;
- a span per SQL statement (``db <VERB>``), per model call and per tool call, children of
  whatever span is current; HTTP tools and tool servers get ``traceparent``;
- runs: when a traced request (or run) queues a run, a short ``run.queue`` span records it and
  its ``traceparent`` is stored with the run (ADR 0047); the dispatcher thread that claims the
  run, in this process or a ``scaicrew worker``, opens ``run.execute`` as its child (and linked
  to it), so the run's steps join the trace of the request that queued it.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode
from sqlalchemy import event
from sqlalchemy.engine import Engine

from domain.database import Database
from domain.kernel import Signal, bind_trace_producer, unbind_trace_producer

_TRANSACTION_CONTROL = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"})
# The writes of a statement with data-modifying CTEs: each CTE's (after ``AS (``) and the
# main one's (after a closing parenthesis).
_CTE_WRITES = re.compile(r"(?:\bAS\s*\(|\))\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def span_name(statement: str) -> str | None:
    """The span name of a SQL statement: ``db <verb>``; for one that starts with ``WITH``,
    ``db WITH`` and the writes of its parts in order (``db WITH UPDATE INSERT``: a run's step
    on PostgreSQL, ADR 0071). None for transaction control (a third of all statements: the
    unit of work's own BEGIN and COMMIT get no span)."""
    verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
    if verb in _TRANSACTION_CONTROL:
        return None
    if verb == "WITH":
        verbs = dict.fromkeys(v.upper() for v in _CTE_WRITES.findall(statement))
        return " ".join(["db WITH", *verbs])
    return f"db {verb}"


#: The sampling ratio when ``OTEL_TRACES_SAMPLER`` is not set (ADR 0052): the SDK's own
#: default samples every request, which costs about a sixth of GET req/s here.
DEFAULT_SAMPLE_RATIO = 0.01


def otlp_provider(endpoint: str, environ: Mapping[str, str] = os.environ) -> TracerProvider:
    """A provider exporting over OTLP/HTTP in batches; the standard ``OTEL_*`` variables
    (sampler, headers, service name...) apply as the SDK reads them, except that without
    ``OTEL_TRACES_SAMPLER`` one trace in a hundred is sampled (a parent's decision wins)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    sampler = None  # the SDK's, from the variables
    if not environ.get("OTEL_TRACES_SAMPLER", "").strip():
        sampler = ParentBased(TraceIdRatioBased(DEFAULT_SAMPLE_RATIO))
    provider = TracerProvider(
        sampler=sampler, resource=Resource.create({"service.name": "scaicrew"})
    )
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
        self._local = threading.local()

    # -- database ------------------------------------------------------------------------

    def instrument_database(self, database: Database) -> None:
        """A span per SQL statement of the units of work opened while a recording span is
        current (statement text, never its parameters). Those go through an instrumented view
        of the engine (same pool); all other work uses the bare engine and pays nothing."""
        views: dict[Engine, Engine] = {}
        for plain in (database.engine, database.writer_engine):
            if plain is not None:
                views[plain] = traced = plain.execution_options()
                self.instrument_engine(traced)

        def choose_engine(plain: Engine) -> Engine:
            return views[plain] if trace.get_current_span().is_recording() else plain

        database.choose_engine = choose_engine

    def instrument_engine(self, engine: Engine) -> None:
        """A span per SQL statement run on ``engine`` while a span is current."""
        tracer = self.tracer

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            span = None
            if trace.get_current_span().is_recording():
                name = span_name(statement)
                if name is not None:
                    span = tracer.start_span(
                        name,
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
                span = spans.pop()
                if span is not None:
                    span.end()

        @event.listens_for(engine, "handle_error")
        def _error(context: Any) -> None:
            conn = context.connection
            spans = conn.info.get("_scaicrew_spans") if conn is not None else None
            if spans:
                span = spans.pop()
                if span is not None:
                    error = type(context.original_exception).__name__
                    span.set_status(Status(StatusCode.ERROR, error))
                    span.end()

    # -- runs ----------------------------------------------------------------------------

    def queue_context(self, run_id: str) -> str | None:
        """The trace producer bound to traced requests and runs (ADR 0047): a run is being
        queued under the current span; the ``traceparent`` to store with it. A sampled span
        gets a short ``run.queue`` child whose context is stored; an unsampled one stores its
        own context (flag 00), so the dispatcher drops the run's spans too, at no cost."""
        current = trace.get_current_span()
        span_context = current.get_span_context()
        if not span_context.is_valid:
            return None
        if current.is_recording():
            span = self.tracer.start_span(
                "run.queue", kind=SpanKind.PRODUCER, attributes={"scaicrew.run_id": run_id}
            )
            span.end()
            span_context = span.get_span_context()
        return traceparent_of(span_context)

    def on_signal(self, signal: Signal) -> None:
        if signal.kind != "run.changed":
            return
        status = str(signal.data.get("status", ""))
        if status == "running":
            if threading.current_thread().name.startswith("scaicrew-worker"):
                run_id = str(signal.data.get("run_id", ""))
                self._start_run(run_id, signal.context)
        elif status != "queued":
            self._end_run(str(signal.data.get("run_id", "")), status)

    def _start_run(self, run_id: str, facts: dict[str, str]) -> None:
        """The dispatcher thread claimed ``run_id``: open ``run.execute``, child of (and linked
        to) the context the run was queued under, wherever that was; current until the run
        leaves ``running``, and the trace producer of the runs it hands off to."""
        self._end_run(run_id, "")  # a span left open by an earlier claim in this thread
        parent = None
        links: list[Link] = []
        traceparent = facts.get("traceparent")
        if traceparent:
            parent = extract({"traceparent": traceparent})
            queued = trace.get_current_span(parent).get_span_context()
            if queued.is_valid:
                links.append(Link(queued))
            else:
                parent = None
        span = self.tracer.start_span(
            "run.execute",
            context=parent if parent is not None else otel_context.Context(),
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={"scaicrew.run_id": run_id, "scaicrew.run_origin": facts.get("origin", "")},
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        producer = bind_trace_producer(self.queue_context)
        self._local.active = (run_id, span, token, producer)

    def _end_run(self, run_id: str, status: str) -> None:
        active = getattr(self._local, "active", None)
        if active is None or (status and active[0] != run_id):
            return
        _, span, token, producer = active
        self._local.active = None
        if status:
            span.set_attribute("scaicrew.run_status", status)
            if status == "failed":
                span.set_status(Status(StatusCode.ERROR))
        span.end()
        unbind_trace_producer(producer)
        otel_context.detach(token)

    # -- work no request started ------------------------------------------------------------

    @contextmanager
    def background(self, name: str) -> Iterator[Any]:
        """A root span ``name`` for work no request started (a scheduler tick): current while
        the block runs, so its statements nest under it and the runs it queues store its
        context (their ``run.execute`` joins its trace, ADR 0047)."""
        span = self.tracer.start_span(name, context=otel_context.Context(), kind=SpanKind.INTERNAL)
        token = otel_context.attach(trace.set_span_in_context(span))
        producer = bind_trace_producer(self.queue_context)
        try:
            yield span
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            unbind_trace_producer(producer)
            otel_context.detach(token)
            span.end()

    def shutdown(self) -> None:
        shutdown = getattr(self.provider, "shutdown", None)
        if callable(shutdown):
            shutdown()


def traceparent_of(span_context: SpanContext) -> str:
    """The W3C ``traceparent`` of a valid span context."""
    return (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
        f"{int(span_context.trace_flags):02x}"
    )


def trace_id_of(span: Any) -> str:
    """The 32-hex trace id of ``span``, or "" when it is not valid."""
    span_context = span.get_span_context()
    if not span_context.is_valid:
        return ""
    return format(span_context.trace_id, "032x")
