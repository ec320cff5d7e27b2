"""Pure ASGI middlewares placed before Connexion's exception handling.

- ``RequestContextMiddleware``: starts the trace id (echoed as ``X-Request-ID``) and binds the
  application context (settings, database) for the request.
- ``HeaderLimitMiddleware``: 431 for header fields over ``MAX_HEADER_BYTES`` in total.
- ``ProblemCorsMiddleware`` (only with ``CORS_ORIGINS``): CORS, refusals as problem+json.
- ``BodyLimitMiddleware``: refuses bodies over the configured size with 413 and malformed
  ``Content-Length`` headers with 400, before anything buffers them (Connexion reads whole
  bodies into memory and would crash on a non-numeric length). A chunked body (no
  ``Content-Length``) is read here, bounded by the same limit, and handed on with its length:
  Connexion takes a request without ``Content-Length`` for one without a body.
- ``ContentNegotiationMiddleware`` (after authentication): 406 for an ``Accept`` that admits
  none of the operation's success media types; the ``Content-Type`` of a body parsed as RFC 9110
  says (case-insensitive, parameters, quoted values) and handed on in canonical form, or 415.
- ``BoundedRoutingMiddleware``: Connexion's routing without redirects the contract does not
  document (Starlette answers ``/v1/crews/`` with a 307 to ``/v1/crews``), and with an ``int``
  path convertor that matches any segment, so ``/versions/abc`` reaches validation (400 naming
  ``number``) instead of the router's 404, and never crashes on a huge integer.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from connexion.frameworks.starlette import IntegerConverter
from connexion.middleware.routing import ROUTING_CONTEXT, RoutingMiddleware
from starlette._utils import get_route_path
from starlette.convertors import register_url_convertor
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handlers._http import scope_header
from handlers.context import AppContext, bind_context
from handlers.media import ContractMedia, MalformedMediaType, acceptable, parse_media_type
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
        trace_id = start_trace(scope_header(scope, "x-request-id"))
        bind_context(self.context)

        header = (b"x-request-id", trace_id.encode("latin-1"))

        async def send_with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                # MutableHeaders(...)["X-Request-ID"] = trace_id, without the object per response.
                headers = [h for h in message.get("headers", ()) if h[0].lower() != header[0]]
                message["headers"] = [*headers, header]
            await send(message)

        await self.app(scope, receive, send_with_trace)


class ProblemCorsMiddleware(CORSMiddleware):
    """Starlette's CORS handling (``CORS_ORIGINS``) with refused preflights answered as
    problem+json like every other 4xx."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        reason = bytes(response.body).decode("utf-8", "replace")
        return Response(
            problem_bytes(response.status_code, f"CORS preflight refused: {reason}."),
            response.status_code,
            media_type=PROBLEM_JSON,
        )


def header_limit_message(limit: int) -> str:
    return f"The request header fields exceed the limit of {limit} bytes."


class HeaderLimitMiddleware:
    """431 problem+json for a request whose header fields exceed ``max_bytes`` in total (name,
    value and the four bytes of ``: `` and CRLF per field). ``scaicrew serve`` refuses such a
    request earlier, before reading it whole (``scaicrew.http_protocol``)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(k) + len(v) + 4 for k, v in scope.get("headers", ()))
            if size > self.max_bytes:
                message = header_limit_message(self.max_bytes)
                await BodyLimitMiddleware._reject(scope, send, 431, message)
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """``path_limits``: (path prefix, limit) pairs that replace ``max_bytes`` under a prefix
    (webhook ingress has its own documented limit). Bodies of GET, HEAD, DELETE and OPTIONS
    requests are never read by any operation, so they are left alone."""

    _BODYLESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})

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
        if scope["type"] != "http" or scope.get("method") in self._BODYLESS:
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope.get("path", ""))
        declared = chunked = None
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                declared = value
            elif key == b"transfer-encoding":
                chunked = value
        if declared is not None:
            if not declared.isdigit() or len(declared) > 18:
                await self._reject(scope, send, 400, "The Content-Length header is not a number.")
                return
            if int(declared) > limit:
                await self._reject(scope, send, 413, self._too_large(limit))
                return
        elif chunked is not None:
            body = await self._read_all(receive, limit)
            if body is None:
                await self._reject(scope, send, 413, self._too_large(limit))
                return
            scope, receive = self._with_body(scope, receive, body)

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
    async def _read_all(receive: Receive, limit: int) -> bytes | None:
        """The whole body, or None once it exceeds ``limit`` bytes (the rest is not read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    def _with_body(scope: Scope, receive: Receive, body: bytes) -> tuple[Scope, Receive]:
        """The request as if it had been sent with ``Content-Length``: one body message."""
        headers = [
            (key, value)
            for key, value in scope["headers"]
            if key not in (b"transfer-encoding", b"content-length")
        ]
        headers.append((b"content-length", str(len(body)).encode()))
        pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        return {**scope, "headers": headers}, replay

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


class ContentNegotiationMiddleware:
    """406 and 415 as the contract documents them, decided per operation (see module doc).

    Clients send the same few ``Accept`` and ``Content-Type`` values over and over, so each
    decision is remembered per (header value, operation media) in a bounded cache.
    """

    def __init__(self, app: ASGIApp, contract: ContractMedia) -> None:
        self.app = app
        self.contract = contract

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        media = None
        if scope["type"] == "http":
            routed = scope.get("extensions", {}).get(ROUTING_CONTEXT)
            if routed is not None:  # the router matched an operation
                media = self.contract.for_operation(routed["operation_id"])
        if media is not None:
            accept = content_type = None
            for key, value in scope.get("headers", []):
                if key == b"accept":
                    accept = value
                elif key == b"content-type":
                    content_type = value
            if accept is not None and media.produces:
                refusal = _not_acceptable(accept, media.produces)
                if refusal is not None:
                    raise ApiError(406, refusal)
            if content_type is not None and media.consumes:
                canonical = _canonical(content_type, media.consumes)
                if isinstance(canonical, str):
                    raise ApiError(415, canonical)
                if canonical != content_type:
                    scope = {
                        **scope,
                        "headers": [
                            (key, canonical if key == b"content-type" else value)
                            for key, value in scope["headers"]
                        ],
                    }
        await self.app(scope, receive, send)


@functools.lru_cache(maxsize=512)
def _not_acceptable(accept: bytes, produces: tuple[str, ...]) -> str | None:
    """Why ``accept`` admits none of ``produces`` (the 406 detail), or None when it admits one."""
    if acceptable(accept.decode("latin-1"), produces):
        return None
    offered = " or ".join(produces)
    return f"This operation answers {offered}, which the Accept header does not admit."


@functools.lru_cache(maxsize=512)
def _canonical(content_type: bytes, consumes: tuple[str, ...]) -> bytes | str:
    """``content_type`` in canonical form, or why it is refused (the 415 detail)."""
    accepted = " or ".join(consumes)
    try:
        parsed = parse_media_type(content_type.decode("latin-1"))
    except MalformedMediaType:
        return f"The Content-Type header is not a media type; send {accepted}."
    if parsed.essence not in consumes:
        return f"This operation accepts {accepted} bodies, not {parsed.essence[:100]}."
    charset = parsed.parameter("charset")
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        return "JSON bodies must be encoded as UTF-8 (charset=utf-8)."
    return parsed.essence.encode("latin-1")


class _AnySegmentIntegerConvertor(IntegerConverter):
    """Matches any path segment; digits become an int, anything else stays text for the
    parameter validator to refuse with a 400 that names the parameter."""

    regex = "[^/]+"

    def convert(self, value: str) -> Any:
        try:
            return int(value)
        except ValueError:  # not digits, or over Python's int digit limit
            return value


class BoundedRoutingMiddleware(RoutingMiddleware):
    """Connexion's routing middleware: no slash redirects, and an ``int`` convertor that matches
    any segment and never raises.

    Connexion registers its own process-global ``int`` convertor when this middleware is built,
    before any route is compiled; replacing it right after makes every route use ours.
    """

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        register_url_convertor("int", _AnySegmentIntegerConvertor())
        self.router.redirect_slashes = False

    def add_api(self, *args: Any, **kwargs: Any) -> None:
        super().add_api(*args, **kwargs)
        for route in self.router.routes:
            inner = getattr(route, "app", None)
            if isinstance(inner, Router):
                inner.redirect_slashes = False
                # The API's router, built by Connexion: same object, indexed lookup.
                inner.__class__ = IndexedRouter
                cast(IndexedRouter, inner).index_routes()


def _route_key(path: str) -> tuple[int, str, str]:
    """(number of segments, first segment, second segment) of a path."""
    segments = path.split("/")
    return len(segments), segments[1] if len(segments) > 1 else "", (segments + ["", ""])[2]


class IndexedRouter(Router):
    """Starlette's router, trying only the routes that can match the path's shape.

    Starlette tries every route's regular expression in order until one matches: with one route
    per operation, dozens per request. A route with a fixed number of segments whose first two
    are literal text can only match a path with as many segments that starts with the same two
    (no path parameter of ours spans a ``/``), so the routes are grouped by that key once; a
    request tries its group and the routes that could match any path (mounts, a parameter in
    the first two segments, a ``:path`` parameter), in the original order. Which route answers,
    and every 404 and 405, is what Starlette's loop over all routes gives.
    """

    _groups: dict[tuple[int, str, str], list[BaseRoute]]
    _anywhere: list[BaseRoute]

    def index_routes(self) -> None:
        groups: dict[tuple[int, str, str], list[BaseRoute]] = {}
        anywhere: list[BaseRoute] = []
        keyed: list[tuple[tuple[int, str, str] | None, BaseRoute]] = []
        for route in self.routes:
            path = getattr(route, "path", None)
            key = None
            if isinstance(path, str) and path and not isinstance(route, Mount):
                key = _route_key(path)
                if "{" in key[1] or "{" in key[2] or ":path}" in path:
                    key = None
            if key is None:
                anywhere.append(route)
            else:
                groups.setdefault(key, [])
            keyed.append((key, route))
        for key in groups:  # each group: its routes and the unindexed ones, in route order
            groups[key] = [route for k, route in keyed if k is None or k == key]
        self._groups, self._anywhere = groups, anywhere
        # Starlette's Router.__init__ bound the base class's ``app`` as the middleware stack
        # that ``__call__`` runs: without this, the class swap leaves the index unused and
        # every request tries the routes one by one (64 regular expressions for a webhook).
        if getattr(self.middleware_stack, "__func__", None) is Router.app:
            self.middleware_stack = self.app

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.redirect_slashes:
            await super().app(scope, receive, send)
            return
        if "router" not in scope:
            scope["router"] = self
        routes = self._groups.get(_route_key(get_route_path(scope)), self._anywhere)
        partial = partial_scope = None
        for route in routes:  # Starlette's loop (starlette.routing.Router.app), over fewer
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial, partial_scope = route, child_scope
        if partial is not None:
            scope["route"] = partial
            scope.update(partial_scope or {})
            await partial.handle(scope, receive, send)
            return
        await self.default(scope, receive, send)
