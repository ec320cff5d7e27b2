"""Validate real responses against openapi.yaml with openapi-core (an independent validator).

Responses are checked against a *closed* copy of the contract: every object schema that does not
say otherwise gets ``additionalProperties: false`` (``allOf`` compositions are merged first, so
closing them stays correct), so a member the contract does not declare fails the test that
received it. Free-form objects say ``additionalProperties: true`` in the contract and stay open.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import httpx
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from handlers.openapi_document import load_spec
from scaicrew.app import SPEC_PATH

_COMPOSITIONS = ("oneOf", "anyOf")


def _resolve(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _merge_all_of(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema["allOf"]:
        part = _resolve(document, part)
        if "allOf" in part:
            part = _merge_all_of(document, part)
        for key, value in part.items():
            if key == "properties":
                merged.setdefault("properties", {}).update(value)
            elif key == "required":
                merged["required"] = sorted({*merged.get("required", []), *value})
            else:
                merged.setdefault(key, copy.deepcopy(value))
    return merged


def _close(document: dict[str, Any], schema: Any) -> Any:
    """``schema`` with every object that does not say otherwise closed (recursively)."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return schema
    if "allOf" in schema:
        schema = _merge_all_of(document, schema)
    closed = dict(schema)
    if "properties" in closed:
        closed["properties"] = {k: _close(document, v) for k, v in closed["properties"].items()}
    if (closed.get("type") == "object" or "properties" in closed) and (
        "additionalProperties" not in closed
    ):
        closed["additionalProperties"] = False
    if isinstance(closed.get("additionalProperties"), dict):
        closed["additionalProperties"] = _close(document, closed["additionalProperties"])
    if "items" in closed:
        closed["items"] = _close(document, closed["items"])
    for key in _COMPOSITIONS:
        if key in closed:
            closed[key] = [_close(document, branch) for branch in closed[key]]
    return closed


def close_schema(schema: Any) -> Any:
    """One schema of the contract (inline, or a ``$ref``) closed as ``closed_document`` does."""
    return _close(_document(), schema)


@cache
def _document() -> dict[str, Any]:
    return load_spec(SPEC_PATH)


def closed_document() -> dict[str, Any]:
    """A copy of the contract whose schemas admit no member they do not declare."""
    document = load_spec(SPEC_PATH)
    schemas = document["components"]["schemas"]
    for name in list(schemas):
        schemas[name] = _close(document, schemas[name])

    def close_inline(node: Any) -> None:  # schemas written inline in paths
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "schema" and isinstance(value, dict):
                    node[key] = _close(document, value)
                else:
                    close_inline(value)
        elif isinstance(node, list):
            for value in node:
                close_inline(value)

    close_inline(document["paths"])
    close_inline(document["components"]["responses"])
    return document


@cache
def spec() -> OpenAPI:
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_dict(closed_document(), config=config)


class HttpxRequest:
    def __init__(self, request: httpx.Request) -> None:
        self._r = request
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )

    @property
    def host_url(self) -> str:
        return f"{self._r.url.scheme}://{self._r.url.netloc.decode()}"

    @property
    def path(self) -> str:
        return self._r.url.path

    @property
    def full_url_pattern(self) -> str:
        return self.host_url + self.path

    @property
    def method(self) -> str:
        return self._r.method.lower()

    @property
    def body(self) -> bytes:
        return self._r.content

    @property
    def content_type(self) -> str:
        return self._r.headers.get("content-type", "application/json")


class HttpxResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._r = response

    @property
    def data(self) -> bytes:
        return self._r.content

    @property
    def status_code(self) -> int:
        return self._r.status_code

    @property
    def content_type(self) -> str:
        return self._r.headers.get("content-type", "").split(";")[0]

    @property
    def headers(self) -> Headers:
        return Headers(dict(self._r.headers))


def validate(response: httpx.Response) -> None:
    """Raise if ``response`` is not what openapi.yaml says this operation answers."""
    spec().validate_response(HttpxRequest(response.request), HttpxResponse(response))


STREAM_DATA_SCHEMAS = {
    "run.changed": "RunChangedData",
    "approval.requested": "ApprovalRequestedData",
    "approval.decided": "ApprovalDecidedData",
    "trigger.fired": "TriggerFiredData",
    "subscription.disabled": "SubscriptionDisabledData",
    "reset": "StreamResetData",
}


@cache
def closed_registry() -> Any:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    resource = Resource.from_contents(closed_document(), default_specification=DRAFT4)
    return Registry().with_resource("urn:scaicrew:contract", resource)


def validate_stream_event(event: str, event_id: str | None, data: Any) -> None:
    """Raise unless one parsed SSE event is what the contract documents: ``StreamEvent`` with
    its ``data`` as sent, and that data parsed against the component for its event type."""
    from openapi_schema_validator import OAS30Validator

    def check(name: str, instance: Any) -> None:
        schema = {"$ref": f"urn:scaicrew:contract#/components/schemas/{name}"}
        OAS30Validator(schema, registry=closed_registry()).validate(instance)

    as_sent = {"event": event, "data": json.dumps(data, separators=(",", ":"))}
    if event_id is not None:
        as_sent["id"] = event_id
    check("StreamEvent", as_sent)
    check(STREAM_DATA_SCHEMAS[event], data)


def check_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert a documented problem+json response with this status and error code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["error"]["code"] == code
    assert body["error"]["trace_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return body
