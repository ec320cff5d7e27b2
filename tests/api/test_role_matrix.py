"""The role matrix, driven by the contract (issue 15): every operation documents the role it
needs ("Requires role `author`"); one role below gets 403 and the role itself succeeds, with
session tokens and with API keys. A new operation is covered the day it is added.

Proof that it bites: deleting ``actor.require(Role.ADMIN)`` from
``Workspaces.update_workspace_membership`` makes
``test_one_role_below_is_forbidden[updateWorkspaceMembership-session]`` (and ``-api_key``) fail.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
import pytest

from domain.kernel import Role
from tests.api.helpers import operations, publish
from tests.api.test_cross_workspace import (
    DELETABLE,
    MCP,
    build_request,
    build_world,
    send,
    success_statuses,
    tools_client,  # noqa: F401 (the fixture: an app that may reach a real MCP server)
)
from tests.support.openapi_check import check_problem


@pytest.fixture
def client(tools_client: httpx.Client) -> httpx.Client:  # noqa: F811
    return tools_client


_REQUIRES = re.compile(r"Requires role `(viewer|operator|author|admin)`")


def documented_role(op: dict[str, Any]) -> Role | None:
    found = _REQUIRES.search(op.get("description") or "")
    return None if found is None else Role.parse(found.group(1))


GATED = [
    (path, method, op, params)
    for path, method, op, params in operations()
    if op.get("security") != []  # public operations have no role
]
BELOW = [entry for entry in GATED if documented_role(entry[2]) not in (None, Role.VIEWER)]
IDS = {id(entry): entry[2]["operationId"] for entry in GATED}


def headers_for(client: httpx.Client, tenant: Any, role: Role, credential: str) -> dict[str, str]:
    if credential == "session":
        return dict(tenant.headers(role))
    r = client.post(
        "/v1/api-keys",
        json={"name": f"matrix {role.label}", "role": role.label},
        headers=tenant.headers(Role.ADMIN),
    )
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['secret']}"}


def request_for(client: httpx.Client, tenant: Any, path, method, op, params) -> httpx.Request:
    admin = tenant.headers(Role.ADMIN)
    needs = {p["name"] for p in params if p["in"] == "path"}
    world = build_world(client, admin, needs)
    if op["operationId"] in DELETABLE:  # only an empty crew, an unpublished member
        world.ids.update(DELETABLE[op["operationId"]](client, admin, world))
    if "ref" in needs:
        world.ids["ref"] = client.get("/v1/templates", headers=admin).json()["items"][0]["ref"]
    if op["operationId"] == "createTrigger":  # its body names the target member: publish it
        publish(client, admin, world.target_member_id)
    if op["operationId"] == "createToolServer":  # a URL the example builder cannot draw
        body = {"name": f"matrix-{secrets.token_hex(4)}", "url": MCP[0].url}
        return client.build_request("POST", "/v1/tool-servers", json=body)
    request = build_request(client, path, method, op, params, world)
    if op["operationId"] == "streamEvents":  # an endless stream: bound it
        request = client.build_request("GET", "/v1/stream", params={"max_seconds": 1})
        # openapi-core cannot read text/event-stream (tests/api/test_stream.py checks events)
        client.event_hooks["response"] = []
    return request


class TestTheMatrixCoversTheContract:
    def test_every_gated_operation_documents_its_role(self):
        missing = [op["operationId"] for _, _, op, _ in GATED if documented_role(op) is None]
        assert missing == []
        assert len(BELOW) >= 28


CREDENTIALS = ["session", "api_key"]


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize(
    ("path", "method", "op", "params"), BELOW, ids=[e[2]["operationId"] for e in BELOW]
)
def test_one_role_below_is_forbidden(client, tenant, path, method, op, params, credential):
    role = documented_role(op)
    assert role is not None
    below = Role(role - 1)
    request = request_for(client, tenant, path, method, op, params)
    r = send(client, request, headers_for(client, tenant, below, credential))
    check_problem(r, 403, "Forbidden")


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize(
    ("path", "method", "op", "params"), GATED, ids=[e[2]["operationId"] for e in GATED]
)
def test_the_documented_role_itself_succeeds(client, tenant, path, method, op, params, credential):
    role = documented_role(op)
    assert role is not None
    request = request_for(client, tenant, path, method, op, params)
    r = send(client, request, headers_for(client, tenant, role, credential))
    assert r.status_code in success_statuses(op), f"{method.upper()} {path}: {r.text}"
