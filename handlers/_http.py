"""Small helpers shared by the resource handlers: the actor, pages and JSON responses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from connexion.context import scope as request_scope
from starlette.responses import Response

from domain.kernel import Actor, ActorKind, Page, PageRequest, Role
from domain.use_cases import UseCases
from handlers import cursors
from handlers.context import app_context
from handlers.json_body import response_bytes
from handlers.problems import ApiError

JSON = "application/json"
T = TypeVar("T")


def actor(token_info: Mapping[str, Any]) -> Actor:
    """The acting identity, built from verified credential claims only."""
    return Actor(
        workspace_id=token_info["workspace_id"],
        subject=token_info["sub"],
        role=Role.parse(token_info["role"]),
        kind=ActorKind(token_info.get("kind", "user")),
    )


def scope_header(scope: Mapping[str, Any], name: str) -> str | None:
    """The first ``name`` header of an ASGI ``scope``, as Starlette's ``Headers.get`` answers
    it, without building a ``Headers`` (or a request) for one value."""
    key = name.lower().encode("latin-1")
    for found, value in scope.get("headers", ()):
        if found == key:
            return str(value.decode("latin-1"))
    return None


def request_header(name: str) -> str | None:
    """The current request's first ``name`` header (``connexion.request`` builds a new
    request object on every access)."""
    return scope_header(request_scope, name)


def use_cases() -> UseCases:
    """The use cases of the app serving the current request."""
    return app_context().use_cases


def page(limit: int = 50, cursor: str | None = None, include_total: bool = False) -> PageRequest:
    """The page a list operation asks for; ``cursor`` is checked (404 InvalidCursor) and
    unwrapped into the domain's position."""
    return PageRequest(limit=limit, cursor=cursors.decode(cursor), include_total=include_total)


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def ok(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """``body`` as a JSON response, encoded here.

    A finished response, not a ``(body, status, headers)`` tuple: Connexion would infer its
    content type (with problem+json also declared it cannot, and answers 500, connexion#1956),
    encode it to text and build the same response, at a cost on every request (ADR 0053).
    """
    content = b"" if body is None else response_bytes(body)
    return Response(content, status, {"Content-Type": JSON, **(headers or {})})


def page_body(result: Page[T], serialise: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    body = {
        "items": [serialise(item) for item in result.items],
        "next_cursor": cursors.encode(result.next_cursor),
    }
    if result.total is not None:  # asked for with include_total=true
        body["total"] = result.total
    return body


def instant(name: str, value: str | None) -> datetime | None:
    """Parse an RFC 3339 query value; the spec checked its format, this insists on an offset.

    :raises ApiError: 400 naming the query parameter.
    """
    if value is None:
        return None
    try:
        parsed: datetime | None = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        reason = "an RFC 3339 date-time with a UTC offset is required"
        raise ApiError(
            400,
            f"query {name}: {reason}.",
            details={
                "errors": [
                    {"location": "query", "name": name, "reason": "format", "message": reason}
                ]
            },
        )
    return parsed
