"""Validate real responses against openapi.yaml with openapi-core (an independent validator)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import httpx
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from scaicrew.app import SPEC_PATH


@cache
def spec() -> OpenAPI:
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_file_path(str(SPEC_PATH), config=config)


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
