"""Trace context: what a queued run carries to its dispatcher, so that the dispatcher's steps
join the trace of the request (or run) that queued it, in whatever process claims it (ADR 0047).

The domain makes no spans and knows nothing of OpenTelemetry. When it queues a run it asks the
*producer* bound to the work in progress for an opaque W3C ``traceparent`` and stores it with
the run. The observability layer binds a producer to each traced request and run; with none
bound (tracing off, a scheduler tick), a run is queued without one.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token

#: Given the id of the run being queued, the ``traceparent`` its dispatcher continues (or None).
TraceProducer = Callable[[str], "str | None"]

_producer: ContextVar[TraceProducer | None] = ContextVar("scaicrew_trace_producer", default=None)


def queued_trace_context(run_id: str) -> str | None:
    """The trace context to store with the run ``run_id`` queued now, or None."""
    producer = _producer.get()
    return None if producer is None else producer(run_id)


def bind_trace_producer(producer: TraceProducer | None) -> Token[TraceProducer | None]:
    """Bind ``producer`` to the current context (a request, a dispatcher thread's run)."""
    return _producer.set(producer)


def unbind_trace_producer(token: Token[TraceProducer | None]) -> None:
    _producer.reset(token)
