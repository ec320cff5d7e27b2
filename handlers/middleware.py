"""Pure ASGI middlewares placed before Connexion's exception handling.

- ``RequestContextMiddleware``: starts the trace id (echoed as ``X-Request-ID``) and binds the
  application context (settings, database) for the request.
- ``BodyLimitMiddleware``: refuses bodies over the configured size with 413 and malformed
  ``Content-Length`` headers with 400, before anything buffers them (Connexion reads whole
  bodies into memory and would crash on a non-numeric length).
- ``BoundedRoutingMiddleware``: Connexion's routing, with an ``int`` path convertor that does not
  crash (500) on integers longer than Python's 4300-digit conversion limit.
"""

from __future__ import annotations

from typing import Any

from connexion.frameworks.starlette import IntegerConverter
from connexion.middleware.routing import RoutingMiddleware
from starlette.convertors import register_url_convertor
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handlers.context import AppContext, bind_context
from handlers.problems import PROBLEM_JSON, ApiError, problem_bytes
from handlers.tracing import start_trace


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, context: AppContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for key, value in scope.get("headers", []):
            if key == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        trace_id = start_trace(incoming)
        bind_context(self.context)

        async def send_with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = trace_id
            await send(message)

        await self.app(scope, receive, send_with_trace)


class BodyLimitMiddleware:
    """``path_limits``: (path prefix, limit) pairs that replace ``max_bytes`` under a prefix
    (webhook ingress has its own documented limit)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, path_limits: tuple[tuple[str, int], ...] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = path_limits

    def _limit_for(self, path: str) -> int:
        for prefix, limit in self.path_limits:
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope.get("path", ""))
        declared = None
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                declared = value
                break
        if declared is not None:
            if not declared.isdigit() or len(declared) > 18:
                await self._reject(scope, send, 400, "The Content-Length header is not a number.")
                return
            if int(declared) > limit:
                await self._reject(scope, send, 413, self._too_large(limit))
                return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise ApiError(413, self._too_large(limit))
            return message

        await self.app(scope, limited_receive, send)

    @staticmethod
    def _too_large(limit: int) -> str:
        return f"The request body exceeds the limit of {limit} bytes."

    @staticmethod
    async def _reject(scope: Scope, send: Send, status: int, message: str) -> None:
        body = problem_bytes(status, message, instance=scope.get("path"))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BoundedIntegerConvertor(IntegerConverter):
    def convert(self, value: str) -> Any:
        try:
            return int(value)
        except ValueError:  # over Python's int digit limit: left as text, validation refuses it
            return value


class BoundedRoutingMiddleware(RoutingMiddleware):
    """Connexion's routing middleware with a path ``int`` convertor that never raises.

    Connexion registers its own process-global ``int`` convertor when this middleware is built,
    before any route is compiled; replacing it right after makes every route use ours.
    """

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        register_url_convertor("int", _BoundedIntegerConvertor())
