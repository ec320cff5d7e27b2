"""Tenancy: every operation with a path id answers 404 for another workspace's resource.

The operations are read from openapi.yaml, so a new operation with a path id is covered the
day it is added (and fails loudly here until this file knows how to create its resource).
Requests are built valid (checked against the contract before they are sent), so the 404 can
only come from tenancy; the same request with workspace A's own credential then succeeds.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from domain.kernel import Role
from tests.api.helpers import (
    DEFINITION,
    create_crew,
    create_member,
    operations,
    publish,
    resolve,
)
from tests.support.mcp_server import McpServerProcess
from tests.support.openapi_check import HttpxRequest, check_problem, spec
from tests.support.runs import app_client

TEXT_WITHOUT_NUL = "^[^\\x00]*$"


def _is_id(name: str) -> bool:
    # A workspace member is addressed by its subject (the identity provider's `sub`).
    return name.endswith("_id") or name == "subject"


# Operations with a path id that are cross-workspace on purpose, and why.
CROSS_WORKSPACE_BY_DESIGN = {
    "receiveWebhook": (
        "public webhook ingress: it has no workspace credential, finds the trigger across "
        "workspaces and is authenticated by the delivery's HMAC signature (tests/api/"
        "test_webhooks.py shows a foreign token changes nothing)"
    ),
}


def _id_operations() -> list[tuple[str, str, dict[str, Any], list[dict[str, Any]]]]:
    return [
        (path, method, op, params)
        for path, method, op, params in operations()
        if any(p["in"] == "path" and _is_id(p["name"]) for p in params)
        and op["operationId"] not in CROSS_WORKSPACE_BY_DESIGN
    ]


ID_OPERATIONS = _id_operations()


@dataclass
class World:
    """Resources in workspace A that every operation with a path id can address."""

    ids: dict[str, str]
    target_member_id: str


# A member whose first tool call pauses for approval (the offline model calls each tool once).
GATED = {
    "objective": "Post the weekly update.",
    "tools": [{"name": "http_post", "effect_class": "external_write"}],
}


# The MCP server tool servers of workspace A are registered on (a real process, module-wide).
MCP: list[McpServerProcess] = []


@pytest.fixture(scope="module")
def tools_client(settings: Any) -> Iterator[httpx.Client]:
    """This module's app: the conftest settings plus a real MCP server it may reach."""
    server = McpServerProcess()
    MCP.append(server)
    try:
        with app_client(settings, tool_server_allowed_hosts=server.host) as c:
            yield c
    finally:
        MCP.remove(server)
        server.stop()


@pytest.fixture
def client(tools_client: httpx.Client) -> httpx.Client:
    return tools_client


def build_world(client: httpx.Client, headers: dict[str, str], needs: set[str]) -> World:
    crew = create_crew(client, headers)
    member = create_member(client, headers, crew["id"])
    target = create_member(client, headers, crew["id"])
    publish(client, headers, member["id"])  # version 1 published ...
    r = client.put(f"/v1/members/{member['id']}/draft", json=DEFINITION, headers=headers)
    assert r.status_code == 200, r.text  # ... and version 2 an open draft
    ids = {"crew_id": crew["id"], "member_id": member["id"]}
    if needs & {"run_id", "approval_id"}:
        ids.update(paused_run(client, headers, crew["id"]))
    if "subject" in needs:
        subject = f"cross-{secrets.token_hex(6)}"
        r = client.post(
            "/v1/workspace/members", json={"subject": subject, "role": "viewer"}, headers=headers
        )
        assert r.status_code == 201, r.text
        ids["subject"] = subject
    if "session_id" in needs:
        r = client.post("/v1/authoring/sessions", json={"crew_id": crew["id"]}, headers=headers)
        assert r.status_code == 201, r.text
        ids["session_id"] = r.json()["id"]
    if "trigger_id" in needs:
        r = client.post(
            "/v1/triggers",
            json={"kind": "webhook", "member_id": member["id"], "name": "Cross"},
            headers=headers,
        )
        assert r.status_code == 201, r.text
        ids["trigger_id"] = r.json()["id"]
    if "tool_server_id" in needs:
        body = {"name": f"cross-{secrets.token_hex(4)}", "url": MCP[0].url}
        r = client.post("/v1/tool-servers", json=body, headers=headers)
        assert r.status_code == 201, r.text
        ids["tool_server_id"] = r.json()["id"]
    if "api_key_id" in needs:
        r = client.post("/v1/api-keys", json={"name": "Cross", "role": "viewer"}, headers=headers)
        assert r.status_code == 201, r.text
        ids["api_key_id"] = r.json()["id"]
    if "budget_id" in needs:
        body = {"name": "Cross", "period": "day", "limit_units": 5}
        r = client.post("/v1/budgets", json=body, headers=headers)
        assert r.status_code == 201, r.text
        ids["budget_id"] = r.json()["id"]
    if needs & {"subscription_id", "delivery_id"}:
        body = {"url": "https://example.com/hook", "event_types": ["run.failed"], "enabled": False}
        r = client.post("/v1/subscriptions", json=body, headers=headers)
        assert r.status_code == 201, r.text
        ids["subscription_id"] = r.json()["id"]
        r = client.post(f"/v1/subscriptions/{ids['subscription_id']}/test", headers=headers)
        assert r.status_code == 202, r.text
        ids["delivery_id"] = r.json()["id"]
    return World(ids=ids, target_member_id=target["id"])


def paused_run(client: httpx.Client, headers: dict[str, str], crew_id: str) -> dict[str, str]:
    """Start a run of a gated member and wait until it waits for its approval."""
    runner = create_member(client, headers, crew_id, definition=GATED)
    publish(client, headers, runner["id"])
    started = client.post(f"/v1/members/{runner['id']}/runs", json={"input": {}}, headers=headers)
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    deadline = time.monotonic() + 15
    while (run := client.get(f"/v1/runs/{run_id}", headers=headers).json())[
        "status"
    ] != "waiting_approval":
        assert run["status"] in ("queued", "running"), run
        assert time.monotonic() < deadline, f"run {run_id} never paused for approval"
        time.sleep(0.02)
    approvals = client.get(f"/v1/approvals?run_id={run_id}", headers=headers).json()["items"]
    assert len(approvals) == 1, approvals
    return {"run_id": run_id, "approval_id": approvals[0]["id"]}


def path_value(param: dict[str, Any], world: World) -> Any:
    if param["name"] in world.ids:
        return world.ids[param["name"]]
    schema = resolve(param.get("schema", {}))
    if schema.get("type") == "integer":
        return schema.get("minimum", 1)
    raise AssertionError(
        f"no value for path parameter {param['name']!r}: create that resource in build_world"
    )


def example(schema: Any, world: World) -> Any:
    """A minimal instance of ``schema`` that the contract accepts."""
    schema = resolve(schema)
    if "example" in schema:
        return schema["example"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return example(schema[key][0], world)
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        names = list(schema.get("required", []))
        for name in properties:
            if len(names) >= schema.get("minProperties", 0):
                break
            if name not in names:
                names.append(name)
        return {name: example(properties[name], world) for name in names}
    if kind == "array":
        return [example(schema["items"], world) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        pattern = schema.get("pattern")
        if pattern and pattern.startswith("^mem_"):
            return world.target_member_id
        for value in world.ids.values():
            if pattern and pattern.startswith(f"^{value.split('_')[0]}_"):
                return value
        if pattern and pattern.startswith("^https?://"):
            return "https://hooks.example.com/scaicrew"  # a public host: no listing needed
        if pattern and pattern != TEXT_WITHOUT_NUL:
            candidate = "x" * max(1, schema.get("minLength", 1))
            assert re.search(pattern, candidate), f"teach example() the pattern {pattern!r}"
        return "x" * max(1, schema.get("minLength", 1))
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    raise AssertionError(f"teach example() to build {schema!r}")


def build_request(
    client: httpx.Client,
    path: str,
    method: str,
    op: dict[str, Any],
    params: list[Any],
    world: World,
) -> httpx.Request:
    url = path
    for param in params:
        if param["in"] == "path":
            url = url.replace("{" + param["name"] + "}", str(path_value(param, world)))
    query = {
        p["name"]: example(p["schema"], world)
        for p in params
        if p["in"] == "query" and p.get("required")
    }
    body = None
    if "requestBody" in op:
        content = resolve(op["requestBody"])["content"]
        body = example(content["application/json"]["schema"], world)
    return client.build_request(method.upper(), url, params=query, json=body)


def send(client: httpx.Client, request: httpx.Request, headers: dict[str, str]) -> httpx.Response:
    request.headers.update(headers)
    # The request is valid by the contract: a 404 can only mean "not in your workspace".
    spec().validate_request(HttpxRequest(request))
    return client.send(request)


def snapshot(client: httpx.Client, world: World, headers: dict[str, str]) -> list[Any]:
    member = world.ids["member_id"]
    urls = [
        f"/v1/crews/{world.ids['crew_id']}",
        f"/v1/members/{member}",
        f"/v1/members/{member}/draft",
        f"/v1/members/{member}/versions",
        f"/v1/members/{member}/handoffs",
    ]
    if "subject" in world.ids:
        urls.append(f"/v1/workspace/members/{world.ids['subject']}")
    if "trigger_id" in world.ids:
        trigger = world.ids["trigger_id"]
        urls += [f"/v1/triggers/{trigger}", f"/v1/triggers/{trigger}/invocations"]
    if "run_id" in world.ids:
        urls += [f"/v1/runs/{world.ids['run_id']}", f"/v1/approvals/{world.ids['approval_id']}"]
    if "api_key_id" in world.ids:
        urls.append("/v1/api-keys")
    if "budget_id" in world.ids:
        urls.append(f"/v1/budgets/{world.ids['budget_id']}")
    if "subscription_id" in world.ids:
        subscription = world.ids["subscription_id"]
        urls += [
            f"/v1/subscriptions/{subscription}",
            f"/v1/subscriptions/{subscription}/deliveries",
        ]
    return [client.get(url, headers=headers).json() for url in urls]


DELETABLE = {
    "deleteCrew": lambda client, h, world: {"crew_id": create_crew(client, h)["id"]},
    "deleteMember": lambda client, h, world: {
        "member_id": create_member(client, h, world.ids["crew_id"])["id"]
    },
}


def success_statuses(op: dict[str, Any]) -> set[int]:
    """2xx, or the documented 501 of a deferred operation (its 2xx is reserved for later)."""
    documented = {int(code) for code in op["responses"] if code.isdigit()}
    if 501 in documented and op["operationId"] != "createTrigger":
        return {501}
    return {code for code in documented if 200 <= code < 300}


class TestEveryOperationWithAPathIdIsTenantScoped:
    def test_the_walk_covers_the_operations_with_path_ids(self):
        names = {op["operationId"] for _, _, op, _ in ID_OPERATIONS}
        assert {"getCrew", "getMember", "publishMember", "replaceMemberHandoffs"} <= names
        assert {"updateWorkspaceMembership", "removeWorkspaceMembership"} <= names
        assert {"getTrigger", "enableTrigger", "disableTrigger", "deleteTrigger"} <= names
        assert "listTriggerInvocations" in names and "receiveWebhook" not in names
        assert set(CROSS_WORKSPACE_BY_DESIGN) <= {
            op["operationId"] for _, _, op, params in operations()
        }
        assert all(success_statuses(op) for _, _, op, _ in ID_OPERATIONS)

    @pytest.mark.parametrize("credential", ["session", "service"])
    @pytest.mark.parametrize(
        ("path", "method", "op", "params"),
        ID_OPERATIONS,
        ids=[op["operationId"] for _, _, op, _ in ID_OPERATIONS],
    )
    def test_another_workspaces_id_is_not_found_and_nothing_changes(
        self, client, make_tenant, jwks, path, method, op, params, credential
    ):
        a, b = make_tenant("Workspace A"), make_tenant("Workspace B")
        a_headers = a.headers(Role.ADMIN)
        world = build_world(client, a_headers, {p["name"] for p in params if p["in"] == "path"})
        if op["operationId"] in DELETABLE:  # only an empty crew, an unpublished member
            world.ids.update(DELETABLE[op["operationId"]](client, a_headers, world))
        if credential == "session":
            b_headers = b.headers(Role.ADMIN)
        else:
            token = jwks.service_token(workspace_id=b.workspace_id)
            b_headers = {"Authorization": f"Bearer {token}"}

        before = snapshot(client, world, a_headers)
        as_b = send(client, build_request(client, path, method, op, params, world), b_headers)
        check_problem(as_b, 404, "NotFound")
        assert snapshot(client, world, a_headers) == before

        as_a = send(client, build_request(client, path, method, op, params, world), a_headers)
        assert as_a.status_code in success_statuses(op), (
            f"{method.upper()} {path} should succeed in its own workspace: {as_a.text}"
        )


class TestIdsInBodiesAndQueriesAreTenantScoped:
    def test_creating_a_member_in_another_workspaces_crew_is_not_found(self, client, make_tenant):
        a, b = make_tenant(), make_tenant()
        crew = create_crew(client, a.headers())
        r = client.post(
            "/v1/members",
            json={"crew_id": crew["id"], "name": "Intruder", "definition": DEFINITION},
            headers=b.headers(),
        )
        body = check_problem(r, 404, "NotFound")
        assert body["error"]["details"]["pointer"] == "/crew_id"

    def test_filtering_by_another_workspaces_crew_finds_nothing(self, client, make_tenant):
        a, b = make_tenant(), make_tenant()
        crew = create_crew(client, a.headers())
        create_member(client, a.headers(), crew["id"])
        member_a = create_member(client, a.headers(), crew["id"])
        r = client.get(f"/v1/members?crew_id={crew['id']}", headers=b.headers())
        assert r.status_code == 200
        assert r.json()["items"] == []
        # The same filter finds the crew's members for its own workspace.
        own = client.get(f"/v1/members?crew_id={crew['id']}", headers=a.headers()).json()
        assert member_a["id"] in [m["id"] for m in own["items"]]

    def test_another_workspaces_items_never_appear_in_lists(self, client, make_tenant):
        a, b = make_tenant(), make_tenant()
        crew = create_crew(client, a.headers())
        create_member(client, a.headers(), crew["id"])
        crew_b = create_crew(client, b.headers())
        member_b = create_member(client, b.headers(), crew_b["id"])
        crews_of_b = [c["id"] for c in client.get("/v1/crews", headers=b.headers()).json()["items"]]
        assert crews_of_b == [crew_b["id"]]
        members_of_b = client.get("/v1/members", headers=b.headers()).json()["items"]
        assert [m["id"] for m in members_of_b] == [member_b["id"]]
