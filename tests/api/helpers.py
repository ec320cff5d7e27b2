"""Helpers for API tests: build resources through the API itself, and read the contract."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import httpx

from handlers.openapi_document import load_spec
from scaicrew.app import SPEC_PATH
from tests.support.openapi_check import validate

DEFINITION: dict[str, Any] = {
    "objective": "Summarise new support tickets every morning.",
    "instructions": "Read the queue, group by product, write a short summary.",
    "rules": ["Never email customers directly."],
    "rigidity": "guided",
    "tools": [
        {"name": "read_queue", "effect_class": "external_read"},
        {"name": "send_email", "effect_class": "external_write"},
    ],
}

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def unique(prefix: str) -> str:
    return f"{prefix} {secrets.token_hex(4)}"


def missing_id(prefix: str) -> str:
    """A well-formed id that names nothing."""
    return f"{prefix}_" + "0" * 26


def create_crew(client: httpx.Client, headers: dict[str, str], name: str | None = None) -> Any:
    r = client.post("/v1/crews", json={"name": name or unique("Crew")}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def create_member(
    client: httpx.Client,
    headers: dict[str, str],
    crew_id: str,
    name: str | None = None,
    definition: dict[str, Any] | None = None,
) -> Any:
    r = client.post(
        "/v1/members",
        json={
            "crew_id": crew_id,
            "name": name or unique("Member"),
            "definition": definition or DEFINITION,
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


def publish(client: httpx.Client, headers: dict[str, str], member_id: str) -> Any:
    r = client.post(f"/v1/members/{member_id}/publish", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def errors_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    return list(body["error"]["details"]["errors"])


@contextmanager
def raw_client(app: Any) -> Iterator[httpx.Client]:
    """A client without response validation, for paths and methods the contract omits."""
    with app.test_client() as c:
        yield c


def validate_hook(response: httpx.Response) -> None:
    """Check a response against openapi.yaml (what the ``client`` fixture does)."""
    response.read()
    if not response.request.url.path.startswith(("/docs", "/openapi.")):
        validate(response)


@cache
def spec_document() -> dict[str, Any]:
    return load_spec(SPEC_PATH)


def resolve(node: Any) -> Any:
    """Follow a local ``$ref`` (recursively) to the node it names."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec_document()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def operations() -> Iterator[tuple[str, str, dict[str, Any], list[dict[str, Any]]]]:
    """Every (path, method, operation, resolved parameters) of the contract."""
    for path, item in spec_document()["paths"].items():
        shared = [resolve(p) for p in item.get("parameters", [])]
        for method in HTTP_METHODS:
            if method in item:
                operation = item[method]
                own = [resolve(p) for p in operation.get("parameters", [])]
                yield path, method, operation, shared + own
