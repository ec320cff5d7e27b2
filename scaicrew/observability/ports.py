"""The model and tool ports, measured and traced: wrappers the composition root puts around the
real adapters when metrics or tracing are on (when both are off, the adapters are used bare)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from opentelemetry.propagate import inject
from opentelemetry.trace import SpanKind, Status, StatusCode

from domain.runs import LanguageModel, ModelReply, answers_in_process
from domain.tools import HttpPort, RemoteTool, ToolServerPort
from scaicrew.observability.metrics import Metrics
from scaicrew.observability.tracing import Tracing

T = TypeVar("T")


class _Instrument:
    _inner: Any

    def __init__(self, metrics: Metrics | None, tracing: Tracing | None) -> None:
        self._metrics = metrics
        self._tracing = tracing

    def __getattr__(self, name: str) -> Any:
        # Anything not measured (such as a model's ``name``) is the adapter's own.
        return getattr(self._inner, name)

    @contextmanager
    def _span(self, name: str, attributes: dict[str, Any]) -> Iterator[None]:
        if self._tracing is None:
            yield
            return
        with self._tracing.tracer.start_as_current_span(
            name, kind=SpanKind.CLIENT, attributes=attributes, record_exception=False
        ) as span:
            try:
                yield
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise

    def _measure(self, record: Callable[[str, float], None], call: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            result = call()
        except Exception:
            record("error", time.perf_counter() - started)
            raise
        record("ok", time.perf_counter() - started)
        return result


class MeasuredModel(_Instrument):
    def __init__(self, inner: LanguageModel, metrics: Metrics | None, tracing: Tracing | None):
        super().__init__(metrics, tracing)
        self._inner = inner
        self.in_process = answers_in_process(inner)

    def _record(self, outcome: str, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.model_calls.labels(outcome).inc()
            self._metrics.model_seconds.observe(seconds)

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelReply:
        with self._span("model.complete", {"scaicrew.model_tools": len(tools)}):
            return self._measure(self._record, lambda: self._inner.complete(messages, tools))


class MeasuredHttp(_Instrument):
    def __init__(self, inner: HttpPort, metrics: Metrics | None, tracing: Tracing | None):
        super().__init__(metrics, tracing)
        self._inner = inner

    def _record(self, outcome: str, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.tool_calls.labels("http", outcome).inc()
            self._metrics.tool_seconds.labels("http").observe(seconds)

    def get(self, url: str, *, idempotency_key: str | None = None) -> dict[str, Any]:
        with self._span("tool.http GET", {"http.request.method": "GET"}):
            return self._measure(
                self._record, lambda: self._inner.get(url, idempotency_key=idempotency_key)
            )

    def post(self, url: str, body: Any, *, idempotency_key: str | None = None) -> dict[str, Any]:
        with self._span("tool.http POST", {"http.request.method": "POST"}):
            return self._measure(
                self._record,
                lambda: self._inner.post(url, body, idempotency_key=idempotency_key),
            )


class MeasuredToolServers(_Instrument):
    def __init__(self, inner: ToolServerPort, metrics: Metrics | None, tracing: Tracing | None):
        super().__init__(metrics, tracing)
        self._inner = inner

    def _record(self, outcome: str, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.tool_calls.labels("mcp", outcome).inc()
            self._metrics.tool_seconds.labels("mcp").observe(seconds)

    @staticmethod
    def _propagated(headers: dict[str, str]) -> dict[str, str]:
        carrier = dict(headers)
        inject(carrier)
        return carrier

    def list_tools(
        self, url: str, headers: dict[str, str], timeout_seconds: float
    ) -> list[RemoteTool]:
        with self._span("tool.mcp list_tools", {}):
            return self._inner.list_tools(url, self._propagated(headers), timeout_seconds)

    def call_tool(
        self,
        url: str,
        headers: dict[str, str],
        name: str,
        arguments: dict[str, Any],
        timeout_seconds: float,
    ) -> dict[str, Any]:
        with self._span("tool.mcp call_tool", {"scaicrew.tool": name[:100]}):
            carrier = self._propagated(headers)
            return self._measure(
                self._record,
                lambda: self._inner.call_tool(url, carrier, name, arguments, timeout_seconds),
            )
