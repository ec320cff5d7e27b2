"""The audit log (issue 14): GET /v1/audit for admins, paginated and filtered; and a walk over
every mutating operation of the contract, checking the one entry each writes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from domain.kernel import Role
from tests.api.helpers import DEFINITION, create_crew, create_member, operations
from tests.support.mcp_server import McpServerProcess
from tests.support.openapi_check import check_problem
from tests.support.peers import Peer, web_route
from tests.support.runs import POSTER, app_client, approvals_of, start, wait_for
from tests.support.runs import published_member as run_published_member
from tests.support.triggers import create_trigger, published_member

MCP_KEY = "sk-test-" + "audit1" * 6


def _entries(client: httpx.Client, h: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = client.get("/v1/audit", params={"limit": 200, **params}, headers=h)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


class TestListAuditEntries:
    def test_an_admin_reads_the_entries_newest_first(self, client, tenant):
        h = tenant.headers(Role.ADMIN)
        crew = create_crew(client, h)
        client.patch(f"/v1/crews/{crew['id']}", json={"name": "Renamed"}, headers=h)
        entries = _entries(client, h, target_id=crew["id"])
        assert [e["action"] for e in entries] == ["crew.updated", "crew.created"]
        updated = entries[0]
        assert (updated["actor"], updated["actor_kind"], updated["target_type"]) == (
            "user-admin",
            "user",
            "crew",
        )
        assert updated["data"] == {"name": "Renamed"}

    def test_filters_combine(self, client, tenant):
        h = tenant.headers(Role.ADMIN)
        crew = create_crew(client, h)
        create_crew(client, tenant.headers(Role.AUTHOR))
        by_author = _entries(client, h, actor="user-author")
        assert {e["actor"] for e in by_author} == {"user-author"}
        created = _entries(client, h, action="crew.created", target_type="crew")
        assert len(created) == 2
        assert (
            _entries(client, h, action="crew.created", actor="user-admin")[0]["target_id"]
            == (crew["id"])
        )
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert _entries(client, h, **{"from": future}) == []
        assert len(_entries(client, h, to=future, action="crew.created")) == 2

    def test_pages_follow_signed_cursors(self, client, tenant):
        h = tenant.headers(Role.ADMIN)
        for _ in range(3):
            create_crew(client, h)
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 1, "action": "crew.created"}
            if cursor:
                params["cursor"] = cursor
            body = client.get("/v1/audit", params=params, headers=h).json()
            seen += [e["id"] for e in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == 3 and seen == sorted(seen, reverse=True)
        r = client.get("/v1/audit", params={"cursor": "Zm9yZ2Vk"}, headers=h)
        check_problem(r, 404, "InvalidCursor")

    def test_only_admins_read_it(self, client, tenant):
        r = client.get("/v1/audit", headers=tenant.headers(Role.AUTHOR))
        check_problem(r, 403, "Forbidden")

    def test_another_workspaces_entries_are_never_listed(self, client, make_tenant):
        owner, stranger = make_tenant(), make_tenant()
        crew = create_crew(client, owner.headers())
        assert _entries(client, stranger.headers(), target_id=crew["id"]) == []

    def test_a_time_without_an_offset_is_a_validation_error(self, client, tenant):
        r = client.get(
            "/v1/audit", params={"from": "2026-11-30T10:00:00"}, headers=tenant.headers()
        )
        check_problem(r, 400, "ValidationError")


# -- the walk --------------------------------------------------------------------------------

# A step makes what its operation needs, calls ``mark()`` (the log as it is then is the
# baseline), calls the operation and answers (response, the id the entry is about).
Step = Callable[[httpx.Client, Any, Callable[[], None]], tuple[httpx.Response, str]]


def _crew(client, tenant):
    return create_crew(client, tenant.headers())


def _member(client, tenant):
    return create_member(client, tenant.headers(), _crew(client, tenant)["id"])


def _webhook(client, tenant):
    h = tenant.headers()
    return create_trigger(client, h, published_member(client, h)["id"], "webhook")


def _walk_steps() -> dict[str, tuple[str, Step]]:
    """operationId -> (the action its entry names, its step)."""
    steps: dict[str, tuple[str, Step]] = {}

    def step(operation: str, action: str) -> Callable[[Step], Step]:
        def register(fn: Step) -> Step:
            steps[operation] = (action, fn)
            return fn

        return register

    @step("updateWorkspace", "workspace.updated")
    def _(client, tenant, mark):
        mark()
        r = client.patch("/v1/workspace", json={"description": "x"}, headers=tenant.headers())
        return r, tenant.workspace_id

    @step("createWorkspace", "workspace.created")
    def _(client, tenant, mark):
        mark()
        r = client.post("/v1/workspaces", json={"name": "Second"}, headers=tenant.headers())
        return r, r.json()["id"]

    @step("createCrew", "crew.created")
    def _(client, tenant, mark):
        mark()
        r = client.post("/v1/crews", json={"name": "Walked"}, headers=tenant.headers())
        return r, r.json()["id"]

    @step("updateCrew", "crew.updated")
    def _(client, tenant, mark):
        crew = _crew(client, tenant)
        mark()
        r = client.patch(f"/v1/crews/{crew['id']}", json={"name": "W"}, headers=tenant.headers())
        return r, crew["id"]

    @step("deleteCrew", "crew.deleted")
    def _(client, tenant, mark):
        crew = _crew(client, tenant)
        mark()
        return client.delete(f"/v1/crews/{crew['id']}", headers=tenant.headers()), crew["id"]

    @step("createMember", "member.created")
    def _(client, tenant, mark):
        body = {"crew_id": _crew(client, tenant)["id"], "name": "Walker", "definition": DEFINITION}
        mark()
        r = client.post("/v1/members", json=body, headers=tenant.headers())
        return r, r.json()["id"]

    @step("updateMember", "member.updated")
    def _(client, tenant, mark):
        m = _member(client, tenant)
        mark()
        r = client.patch(f"/v1/members/{m['id']}", json={"name": "W"}, headers=tenant.headers())
        return r, m["id"]

    @step("deleteMember", "member.deleted")
    def _(client, tenant, mark):
        m = _member(client, tenant)
        mark()
        return client.delete(f"/v1/members/{m['id']}", headers=tenant.headers()), m["id"]

    @step("archiveMember", "member.archived")
    def _(client, tenant, mark):
        m = _member(client, tenant)
        mark()
        return client.post(f"/v1/members/{m['id']}/archive", headers=tenant.headers()), m["id"]

    @step("unarchiveMember", "member.unarchived")
    def _(client, tenant, mark):
        m = _member(client, tenant)
        client.post(f"/v1/members/{m['id']}/archive", headers=tenant.headers())
        mark()
        return client.post(f"/v1/members/{m['id']}/unarchive", headers=tenant.headers()), m["id"]

    @step("replaceMemberDraft", "member.draft_replaced")
    def _(client, tenant, mark):
        m = _member(client, tenant)
        mark()
        r = client.put(f"/v1/members/{m['id']}/draft", json=DEFINITION, headers=tenant.headers())
        return r, m["id"]

    @step("restoreMemberVersion", "member.draft_forked")
    def _(client, tenant, mark):
        m = _member(client, tenant)
        client.post(f"/v1/members/{m['id']}/publish", headers=tenant.headers())
        mark()
        r = client.post(f"/v1/members/{m['id']}/versions/1/restore", headers=tenant.headers())
        return r, m["id"]

    @step("publishMember", "member.published")
    def _(client, tenant, mark):
        m = _member(client, tenant)
        mark()
        return client.post(f"/v1/members/{m['id']}/publish", headers=tenant.headers()), m["id"]

    @step("replaceMemberHandoffs", "member.handoffs_replaced")
    def _(client, tenant, mark):
        m, target = _member(client, tenant), _member(client, tenant)
        body = {"handoffs": [{"target_member_id": target["id"]}]}
        mark()
        r = client.put(f"/v1/members/{m['id']}/handoffs", json=body, headers=tenant.headers())
        return r, m["id"]

    @step("installTemplate", "member.created")
    def _(client, tenant, mark):
        body = {"crew_id": _crew(client, tenant)["id"], "name": "From a template"}
        mark()
        r = client.post("/v1/templates/meeting-notes/install", json=body, headers=tenant.headers())
        return r, r.json()["id"]

    @step("createTrigger", "trigger.created")
    def _(client, tenant, mark):
        h = tenant.headers()
        body = {"kind": "webhook", "member_id": published_member(client, h)["id"], "name": "T"}
        mark()
        r = client.post("/v1/triggers", json=body, headers=h)
        return r, r.json()["id"]

    @step("updateTrigger", "trigger.updated")
    def _(client, tenant, mark):
        t = _webhook(client, tenant)
        mark()
        r = client.patch(f"/v1/triggers/{t['id']}", json={"name": "W"}, headers=tenant.headers())
        return r, t["id"]

    @step("deleteTrigger", "trigger.deleted")
    def _(client, tenant, mark):
        t = _webhook(client, tenant)
        mark()
        return client.delete(f"/v1/triggers/{t['id']}", headers=tenant.headers()), t["id"]

    @step("rotateTriggerSecret", "trigger.secret_rotated")
    def _(client, tenant, mark):
        t = _webhook(client, tenant)
        mark()
        r = client.post(f"/v1/triggers/{t['id']}/rotate-secret", headers=tenant.headers())
        return r, t["id"]

    @step("disableTrigger", "trigger.disabled")
    def _(client, tenant, mark):
        t = _webhook(client, tenant)
        mark()
        return client.post(f"/v1/triggers/{t['id']}/disable", headers=tenant.headers()), t["id"]

    @step("enableTrigger", "trigger.enabled")
    def _(client, tenant, mark):
        t = _webhook(client, tenant)
        client.post(f"/v1/triggers/{t['id']}/disable", headers=tenant.headers())
        mark()
        return client.post(f"/v1/triggers/{t['id']}/enable", headers=tenant.headers()), t["id"]

    @step("addWorkspaceMembership", "member.added")
    def _(client, tenant, mark):
        body = {"subject": "walked-user", "role": "viewer"}
        mark()
        return client.post("/v1/workspace/members", json=body, headers=tenant.headers()), (
            "walked-user"
        )

    @step("updateWorkspaceMembership", "member.role_changed")
    def _(client, tenant, mark):
        h = tenant.headers()
        client.post("/v1/workspace/members", json={"subject": "w2", "role": "viewer"}, headers=h)
        mark()
        r = client.patch("/v1/workspace/members/w2", json={"role": "author"}, headers=h)
        return r, "w2"

    @step("removeWorkspaceMembership", "member.removed")
    def _(client, tenant, mark):
        h = tenant.headers()
        client.post("/v1/workspace/members", json={"subject": "w3", "role": "viewer"}, headers=h)
        mark()
        return client.delete("/v1/workspace/members/w3", headers=h), "w3"

    @step("createApiKey", "api_key.created")
    def _(client, tenant, mark):
        mark()
        body = {"name": "CI", "role": "operator"}
        r = client.post("/v1/api-keys", json=body, headers=tenant.headers())
        return r, r.json()["id"]

    @step("revokeApiKey", "api_key.revoked")
    def _(client, tenant, mark):
        body = {"name": "Old CI", "role": "viewer"}
        key = client.post("/v1/api-keys", json=body, headers=tenant.headers()).json()
        mark()
        return client.delete(f"/v1/api-keys/{key['id']}", headers=tenant.headers()), key["id"]

    # Budgets (issue 16).
    _budget_body = {
        "name": "Team",
        "scope": {"type": "workspace"},
        "period": "day",
        "limit_units": 5,
    }

    def _budget(client: httpx.Client, tenant: Any) -> dict[str, Any]:
        r = client.post("/v1/budgets", json=_budget_body, headers=tenant.headers())
        assert r.status_code == 201, r.text
        return dict(r.json())

    @step("createBudget", "budget.created")
    def _(client, tenant, mark):
        mark()
        r = client.post("/v1/budgets", json=_budget_body, headers=tenant.headers())
        return r, r.json()["id"]

    @step("updateBudget", "budget.updated")
    def _(client, tenant, mark):
        b = _budget(client, tenant)
        mark()
        body = {"limit_units": 7.5}
        return client.patch(f"/v1/budgets/{b['id']}", json=body, headers=tenant.headers()), b["id"]

    @step("deleteBudget", "budget.deleted")
    def _(client, tenant, mark):
        b = _budget(client, tenant)
        mark()
        return client.delete(f"/v1/budgets/{b['id']}", headers=tenant.headers()), b["id"]

    # Subscriptions (issue 16): a public URL, disabled, so nothing is ever sent.
    def _subscription(client: httpx.Client, tenant: Any) -> dict[str, Any]:
        body = {"url": "https://example.com/hook", "event_types": ["run.failed"], "enabled": False}
        r = client.post("/v1/subscriptions", json=body, headers=tenant.headers())
        assert r.status_code == 201, r.text
        return dict(r.json())

    @step("createSubscription", "subscription.created")
    def _(client, tenant, mark):
        mark()
        body = {"url": "https://example.com/hook", "event_types": ["run.failed"], "enabled": False}
        r = client.post("/v1/subscriptions", json=body, headers=tenant.headers())
        return r, r.json()["id"]

    @step("updateSubscription", "subscription.updated")
    def _(client, tenant, mark):
        s = _subscription(client, tenant)
        mark()
        body = {"event_types": ["run.succeeded"]}
        r = client.patch(f"/v1/subscriptions/{s['id']}", json=body, headers=tenant.headers())
        return r, s["id"]

    @step("deleteSubscription", "subscription.deleted")
    def _(client, tenant, mark):
        s = _subscription(client, tenant)
        mark()
        return client.delete(f"/v1/subscriptions/{s['id']}", headers=tenant.headers()), s["id"]

    @step("rotateSubscriptionSecret", "subscription.secret_rotated")
    def _(client, tenant, mark):
        s = _subscription(client, tenant)
        mark()
        path = f"/v1/subscriptions/{s['id']}/rotate-secret"
        return client.post(path, json={"grace_seconds": 60}, headers=tenant.headers()), s["id"]

    @step("testSubscription", "subscription.tested")
    def _(client, tenant, mark):
        s = _subscription(client, tenant)
        mark()
        return client.post(f"/v1/subscriptions/{s['id']}/test", headers=tenant.headers()), s["id"]

    @step("redeliverSubscriptionDelivery", "subscription.redelivered")
    def _(client, tenant, mark):
        s = _subscription(client, tenant)
        h = tenant.headers()
        ping = client.post(f"/v1/subscriptions/{s['id']}/test", headers=h).json()
        mark()
        url = f"/v1/subscriptions/{s['id']}/deliveries/{ping['id']}/redeliver"
        return client.post(url, headers=h), s["id"]

    return steps


WALK = _walk_steps()

# Tool servers need a real MCP server and an app that allows its host (tests/api/test_tool_servers).
TOOL_SERVER_WALK = {
    "createToolServer": "tool_server.created",
    "updateToolServer": "tool_server.updated",
    "refreshToolServer": "tool_server.refreshed",
    "deleteToolServer": "tool_server.deleted",
}

# Runs and their approvals need a worker and a tool target (a local peer): walked below.
RUN_WALK = {
    "startRun": "run.started",
    "cancelRun": "run.cancelled",
    "approveApproval": "approval.approved",
    "rejectApproval": "approval.rejected",
}

# Logins need the OIDC provider: tests/api/test_login.py::TestAudit.
LOGIN_WALK = {"redeemSessionCode": "login.succeeded", "refreshSession": "session.refreshed"}

# Mutating operations that write no entry (yet), and why. Every mutating operation of the
# contract is either walked above or named here, so a new one cannot be forgotten.
NO_ENTRY = {
    # Deferred: they answer 501 and change nothing.
    "retryRun": "deferred (501)",
    "upgradeTemplate": "deferred (501)",
    "exportMemberToScaiflow": "deferred (501)",
    # Change no workspace state an admin audits: a ticket opens the caller's own stream.
    "createStreamTicket": "opens the caller's stream, changes nothing",
    "receiveWebhook": "in the trigger's invocation log",
    # A login writes its entry when it opens a workspace (redeemSessionCode, LOGIN_WALK).
    "startLogin": "no workspace yet: the login is audited when its session code is redeemed",
    # Authoring conversations: the draft a turn derives is audited when it is published.
    "createAuthoringSession": "a conversation, not yet a change",
    "takeAuthoringTurn": "a conversation, not yet a change",
}


def test_every_mutating_operation_is_walked_or_named():
    mutating = {
        op["operationId"]
        for _, method, op, _ in operations()
        if method in ("post", "put", "patch", "delete")
    }
    walked = set(WALK) | set(TOOL_SERVER_WALK) | set(RUN_WALK) | set(LOGIN_WALK)
    assert walked | set(NO_ENTRY) == mutating
    assert not set(WALK) & set(NO_ENTRY)


@pytest.mark.parametrize("operation", sorted(WALK))
def test_a_mutating_operation_writes_exactly_one_entry(client, make_tenant, operation):
    tenant = make_tenant()
    h = tenant.headers(Role.ADMIN)
    action, perform = WALK[operation]
    before: set[str] = set()

    def mark() -> None:
        before.update(e["id"] for e in _entries(client, h))

    response, target_id = perform(client, tenant, mark)
    assert response.status_code < 300, response.text
    new = [e for e in _entries(client, h) if e["id"] not in before]
    assert [(e["action"], e["target_id"]) for e in new] == [(action, target_id)], new
    assert new[0]["actor"] == "user-admin"


@pytest.fixture(scope="module")
def tool_api(settings: Any) -> Iterator[tuple[httpx.Client, McpServerProcess]]:
    server = McpServerProcess(key=MCP_KEY)
    try:
        with app_client(settings, tool_server_allowed_hosts=server.host) as client:
            yield client, server
    finally:
        server.stop()


@pytest.mark.parametrize("operation", sorted(TOOL_SERVER_WALK))
def test_a_tool_server_operation_writes_exactly_one_entry(tool_api, make_tenant, operation):
    client, server = tool_api
    tenant = make_tenant()
    h = tenant.headers(Role.ADMIN)

    def register() -> httpx.Response:
        body = {"name": f"crm-{operation.lower()}", "url": server.url}
        return client.post(
            "/v1/tool-servers", json={**body, "headers": {"X-Api-Key": MCP_KEY}}, headers=h
        )

    server_id = None if operation == "createToolServer" else register().json()["id"]
    before = {e["id"] for e in _entries(client, h)}
    if operation == "createToolServer":
        response = register()
        server_id = response.json()["id"]
    elif operation == "updateToolServer":
        body = {"headers": {"X-Api-Key": MCP_KEY}}
        response = client.patch(f"/v1/tool-servers/{server_id}", json=body, headers=h)
    elif operation == "refreshToolServer":
        response = client.post(f"/v1/tool-servers/{server_id}/refresh", headers=h)
    else:
        response = client.delete(f"/v1/tool-servers/{server_id}", headers=h)
    assert response.status_code < 300, response.text
    new = [e for e in _entries(client, h) if e["id"] not in before]
    assert [(e["action"], e["target_id"]) for e in new] == [
        (TOOL_SERVER_WALK[operation], server_id)
    ]


@pytest.fixture(scope="module")
def web() -> Iterator[Peer]:
    peer = Peer(web_route).start()
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def run_api(settings: Any) -> Iterator[httpx.Client]:
    with app_client(settings, tool_http_allowlist=("127.0.0.1",)) as client:
        yield client


@pytest.mark.parametrize("operation", sorted(RUN_WALK))
def test_a_run_operation_writes_exactly_one_entry(run_api, make_tenant, web, operation):
    client, tenant = run_api, make_tenant()
    h = tenant.headers(Role.ADMIN)
    member = run_published_member(client, h, POSTER)
    run_input = {"url": web.url(f"/hook/audit-{operation}"), "note": "audited"}
    if operation == "startRun":
        before = {e["id"] for e in _entries(client, h)}
        response = client.post(
            f"/v1/members/{member['id']}/runs", json={"input": run_input}, headers=h
        )
        target_id = response.json()["id"]
    else:
        run = start(client, h, member["id"], run_input)
        wait_for(client, h, run["id"], ("waiting_approval",))
        approval = approvals_of(client, h, run["id"])[0]
        before = {e["id"] for e in _entries(client, h)}
        if operation == "cancelRun":
            response = client.post(f"/v1/runs/{run['id']}/cancel", headers=h)
            target_id = run["id"]
        elif operation == "approveApproval":
            response = client.post(f"/v1/approvals/{approval['id']}/approve", headers=h)
            target_id = approval["id"]
        else:
            body = {"reason": "not today"}
            response = client.post(f"/v1/approvals/{approval['id']}/reject", json=body, headers=h)
            target_id = approval["id"]
    assert response.status_code < 300, response.text
    new = [e for e in _entries(client, h) if e["id"] not in before]
    assert [(e["action"], e["target_id"]) for e in new] == [(RUN_WALK[operation], target_id)], new
    assert new[0]["actor"] == "user-admin"
