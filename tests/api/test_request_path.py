"""The request path's shortcuts (ADR 0053) give the answers of the long way they replace."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pytest
from connexion.exceptions import OAuthProblem, ProblemException
from connexion.middleware.security import SecurityOperation
from connexion.security import NO_VALUE, SecurityHandlerFactory
from starlette.responses import Response
from starlette.routing import Match, Route, Router

from handlers._http import ok
from handlers.bearer_security import BearerSecurityOperation, bearer_functions
from handlers.etags import etag_of
from handlers.json_body import FastJsonifier
from handlers.media import ContractMedia, _operation_media
from handlers.middleware import IndexedRouter, _route_key
from handlers.openapi_document import load_spec
from handlers.operations import handler_paths
from scaicrew.app import SPEC_PATH

SPEC = load_spec(SPEC_PATH)
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (template, method, operation)
        for template, item in SPEC["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    ]


def _concrete(template: str, value: str) -> str:
    parts = [value if part.startswith("{") else part for part in template.split("/")]
    return "/".join(parts)


def test_every_operation_finds_its_media_types_by_the_id_the_router_matched():
    media = ContractMedia(SPEC)
    routing_ids = handler_paths(SPEC)  # what OperationResolver hands Connexion's router
    for _, _, operation in _operations():
        found = media.for_operation(routing_ids[operation["operationId"]])
        assert found == _operation_media(operation), operation["operationId"]
    assert media.for_operation("handlers.nowhere.nothing") is None


def _chosen(routes: list[Any], scope: dict[str, Any]) -> tuple[Any, Match]:
    """What Starlette's Router.app loop picks: the first full match, else the first partial."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route, match
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial, Match.PARTIAL if partial is not None else Match.NONE


def _router() -> IndexedRouter:
    def endpoint(_request: Any) -> Response:
        return Response(status_code=204)

    routes = [
        Route(template, endpoint, methods=[method.upper()]) for template, method, _ in _operations()
    ]
    router = Router(routes=routes)
    router.__class__ = IndexedRouter
    assert isinstance(router, IndexedRouter)
    router.index_routes()
    return router


@pytest.mark.parametrize("value", ["x1", "1", "a.b", "%2F"])
def test_the_indexed_router_picks_the_route_starlettes_loop_picks(value):
    router = _router()
    paths = {_concrete(template, value) for template, _, _ in _operations()}
    paths |= {p + "/" for p in paths} | {p + "/extra" for p in paths}
    paths |= {"/", "", "/v1", "/v1/", "/nope", "/v1/nope/x", "/openapi.json", "//v1/crews"}
    for path in sorted(paths):
        for method in METHODS:
            scope = {"type": "http", "path": path, "root_path": "", "method": method}
            candidates = router._groups.get(_route_key(path), router._anywhere)
            assert _chosen(candidates, scope) == _chosen(router.routes, scope), (method, path)


def _tried(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the routes whose pattern a request tries from now on."""
    tried: list[str] = []
    matches = Route.matches

    def counted(route: Route, scope: Any) -> Any:
        tried.append(route.path)
        return matches(route, scope)

    monkeypatch.setattr(Route, "matches", counted)
    return tried


def test_a_request_to_the_indexed_router_tries_only_its_group(monkeypatch):
    # Starlette's Router runs the ``app`` it bound when built; the index must be the one run.
    router = _router()
    router.redirect_slashes = False  # as BoundedRoutingMiddleware sets it
    tried = _tried(monkeypatch)
    scope = {
        "type": "http",
        "path": "/v1/webhooks/trg_1",
        "root_path": "",
        "method": "POST",
        "headers": [],
        "query_string": b"",
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(router(scope, receive, send))
    assert sent[0]["status"] == 204
    group = router._groups[_route_key("/v1/webhooks/trg_1")]
    assert tried == [route.path for route in group][: len(tried)]
    assert "/v1/webhooks/{trigger_id}" in tried and len(tried) < len(router.routes) / 4


def test_the_app_routes_a_request_through_the_index(client, monkeypatch):
    tried = _tried(monkeypatch)
    headers = {"X-ScaiCrew-Timestamp": "1", "X-ScaiCrew-Signature": "sha256=" + "0" * 64}
    response = client.post("/v1/webhooks/trg_" + "0" * 26, json={}, headers=headers)
    assert response.status_code == 401, response.text  # one answer for every refusal
    assert "/v1/webhooks/{trigger_id}" in tried
    assert len(tried) <= 4  # Starlette's loop over every route tried 64


@pytest.mark.parametrize(
    "body", [{"b": 1, "a": "é", "n": None, "l": [1.5, True]}, [], "text", None, {"big": 2**70}]
)
def test_a_handlers_json_response_is_the_bytes_connexion_would_have_sent(body):
    response = ok(body, 201, {"ETag": '"x"'})
    expected = b"" if body is None else FastJsonifier().dumps(body).encode("utf-8")
    assert (response.status_code, response.body) == (201, expected)
    assert response.headers["content-type"] == "application/json"
    assert response.headers["etag"] == '"x"'
    assert response.headers["content-length"] == str(len(expected))


@pytest.mark.parametrize(
    "body",
    [{"b": 1, "a": "é", "n": None, "l": [1.5, True, {"z": 0, "y": "\u2028"}]}, {"big": 2**70}],
)
def test_an_entity_tag_hashes_the_canonical_json_of_the_representation(body):
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]
    assert etag_of(body) == f'"{digest}"'


# -- bearer security (handlers.bearer_security) -------------------------------------------------


def first_scheme(token: str) -> Any:
    """An info function for the comparison below: what it answers depends on the token."""
    if token.startswith("a-"):
        return {"sub": "first", "token": token}
    if token == "refused":
        raise OAuthProblem(detail="refused by the first scheme")
    if token == "forbidden":
        raise ProblemException(status=403, title="Forbidden", detail="no")
    if token == "none":
        return None
    return NO_VALUE


async def second_scheme(token: str) -> Any:
    if token.startswith("b-") or token == "refused":
        return {"uid": "second", "token": token}
    if token in ("broken", "forbidden"):
        raise ProblemException(status=418, title="Teapot", detail="odd")
    return NO_VALUE


_SCHEMES = {
    name: {"type": "http", "scheme": "bearer", "x-bearerInfoFunc": f"{__name__}.{function}"}
    for name, function in (("first", "first_scheme"), ("second", "second_scheme"))
}


async def _security_answer(operation_class: type, header: bytes | None) -> Any:
    seen: dict[str, Any] = {}

    async def next_app(scope: Any, _receive: Any, _send: Any) -> None:
        seen.update(scope["extensions"]["connexion_context"])

    operation = operation_class(
        next_app,
        security_handler_factory=SecurityHandlerFactory(),
        security=[{"first": []}, {"second": []}],
        security_schemes=_SCHEMES,
    )
    headers = [] if header is None else [(b"authorization", header)]
    scope = {"type": "http", "headers": headers, "query_string": b"", "path": "/"}
    try:
        await operation(scope, None, None)
    except Exception as exc:
        return type(exc).__name__, getattr(exc, "status_code", None), getattr(exc, "detail", None)
    return seen


@pytest.mark.parametrize(
    "header",
    [
        None,
        b"",
        b"Bearer",
        b"Basic dXNlcjpwdw==",
        b"Bearer a-1",
        b"bearer b-2",
        b"BEARER  a-3 trailing",
        b"Bearer refused",
        b"Bearer forbidden",
        b"Bearer none",
        b"Bearer broken",
        b"Bearer unknown",
    ],
)
def test_the_bearer_security_answers_what_connexions_security_answers(header):
    ours = asyncio.run(_security_answer(BearerSecurityOperation, header))
    assert ours == asyncio.run(_security_answer(SecurityOperation, header))
    assert ours  # claims in the context, or an error


def test_the_bearer_security_leaves_other_security_to_connexion():
    bearer = {"type": "http", "scheme": "bearer", "x-bearerInfoFunc": f"{__name__}.first_scheme"}
    query = {"type": "apiKey", "in": "query", "name": "ticket"}
    assert bearer_functions([{"a": []}], {"a": bearer}) == [first_scheme]
    assert bearer_functions([{"a": []}, {"q": []}], {"a": bearer, "q": query}) == []
    assert bearer_functions([{"a": [], "b": []}], {"a": bearer, "b": bearer}) == []
    assert bearer_functions([{"a": ["scope"]}], {"a": bearer}) == []
    assert bearer_functions([{}], {}) == []
    spec_default = [{name: []} for name in ("sessionAuth", "serviceAuth", "apiKeyAuth")]
    assert len(bearer_functions(spec_default, SPEC["components"]["securitySchemes"])) == 3
