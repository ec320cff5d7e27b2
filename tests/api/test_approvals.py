"""Approvals: a checkpoint pauses the run; one decision resumes it exactly once or fails it."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from domain.kernel import Role
from tests.api.helpers import missing_id
from tests.support.openapi_check import check_problem
from tests.support.peers import Peer, web_route
from tests.support.runs import (
    GETTER,
    POSTER,
    app_client,
    approvals_of,
    definition,
    event_types,
    events,
    published_member,
    start,
    wait_for,
)


@pytest.fixture(scope="module")
def web() -> Iterator[Peer]:
    peer = Peer(web_route).start()
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def api(settings: Any) -> Iterator[httpx.Client]:
    """The API with 127.0.0.1 on the tool allow-list (so http tools reach the local peer)."""
    with app_client(settings, tool_http_allowlist=("127.0.0.1",)) as c:
        yield c


def paused(
    api: httpx.Client, tenant: Any, web: Peer, member_definition: dict[str, Any] = POSTER
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A run of a gated member waiting for approval: (run, approval, the peer path it targets)."""
    # Unique per call: ``id(tenant)`` is reused once a test's tenant is collected, and the peer
    # keeps every request of the module (a reused path showed another test's call here).
    path = f"/hook/{secrets.token_hex(8)}"
    member = published_member(api, tenant.headers(Role.AUTHOR), member_definition)
    run_input = {"url": web.url(path), "note": "ship it"}
    run = start(api, tenant.headers(Role.OPERATOR), member["id"], run_input)
    run = wait_for(api, tenant.headers(), run["id"], ("waiting_approval",))
    approvals = approvals_of(api, tenant.headers(Role.VIEWER), run["id"])
    assert len(approvals) == 1, approvals
    return run, approvals[0], path


class TestCheckpoint:
    def test_an_external_write_pauses_the_run_and_creates_a_pending_approval(
        self, api, tenant, web
    ):
        run, approval, path = paused(api, tenant, web)
        assert run["status"] == "waiting_approval"
        assert approval["status"] == "pending"
        assert approval["run_id"] == run["id"]
        assert approval["member_id"] == run["member_id"]
        assert (approval["version_id"], approval["version_number"]) == (run["version_id"], 1)
        assert (approval["tool"], approval["effect_class"]) == ("http_post", "external_write")
        assert approval["arguments"] == {"url": web.url(path), "body": run["input"]}
        assert (approval["reason"], approval["decided_by"], approval["decided_at"]) == (
            None,
            None,
            None,
        )
        assert event_types(api, tenant.headers(), run["id"])[-1] == "approval.requested"
        assert web.received(prefix=path) == []  # nothing was sent before the decision

        one = api.get(f"/v1/approvals/{approval['id']}", headers=tenant.headers(Role.VIEWER))
        assert one.status_code == 200 and one.json() == approval

    def test_the_queue_lists_and_filters_approvals(self, api, tenant, web):
        first_run, first, _ = paused(api, tenant, web)
        second_run, second, _ = paused(api, tenant, web)
        h = tenant.headers(Role.VIEWER)

        def ids(query: str) -> list[str]:
            r = api.get(f"/v1/approvals?{query}", headers=h)
            assert r.status_code == 200, r.text
            return [a["id"] for a in r.json()["items"]]

        assert ids("") == [first["id"], second["id"]]  # oldest first
        assert ids("status=pending") == [first["id"], second["id"]]
        assert ids(f"run_id={second_run['id']}") == [second["id"]]
        assert ids(f"member_id={first_run['member_id']}") == [first["id"]]
        assert ids("status=approved") == []
        page = api.get("/v1/approvals?limit=1", headers=h).json()
        assert [a["id"] for a in page["items"]] == [first["id"]]
        rest = api.get(f"/v1/approvals?limit=1&cursor={page['next_cursor']}", headers=h).json()
        assert [a["id"] for a in rest["items"]] == [second["id"]]

        r = api.post(f"/v1/approvals/{first['id']}/approve", headers=tenant.headers())
        assert r.status_code == 200
        assert ids("status=pending") == [second["id"]]
        assert ids("") == [second["id"]]  # the default is the pending queue
        assert ids("status=approved") == [first["id"]]
        assert ids("status=all") == [first["id"], second["id"]]

    def test_approvals_of_another_workspace_never_show(self, api, make_tenant, web):
        a, b = make_tenant(), make_tenant()
        _, approval, _ = paused(api, a, web)
        assert api.get("/v1/approvals", headers=b.headers()).json()["items"] == []
        own = api.get("/v1/approvals", headers=a.headers()).json()["items"]
        assert [item["id"] for item in own] == [approval["id"]]
        for url in (f"/v1/approvals/{approval['id']}/approve",):
            check_problem(api.post(url, headers=b.headers()), 404, "NotFound")
        check_problem(
            api.post(
                f"/v1/approvals/{approval['id']}/reject", json={"reason": "no"}, headers=b.headers()
            ),
            404,
            "NotFound",
        )

    def test_a_whitelisted_external_write_runs_without_approval(self, api, tenant, web):
        h = tenant.headers()
        member_def = {
            "objective": "Post.",
            "tools": [{"name": "http_post", "effect_class": "external_write", "whitelisted": True}],
        }
        member = published_member(api, h, member_def)
        run = start(api, h, member["id"], {"url": web.url("/whitelisted/" + tenant.workspace_id)})
        run = wait_for(api, h, run["id"])
        assert run["status"] == "succeeded", run["error"]
        assert approvals_of(api, h, run["id"]) == []
        assert len(web.received("POST", "/whitelisted/" + tenant.workspace_id)) == 1

    def test_under_strict_rigidity_an_external_read_waits_for_approval(self, api, tenant, web):
        run, approval, path = paused(api, tenant, web, {**GETTER, "rigidity": "strict"})
        assert approval["tool"] == "http_get"
        assert web.received(prefix=path) == []
        r = api.post(f"/v1/approvals/{approval['id']}/approve", headers=tenant.headers())
        assert r.status_code == 200
        assert wait_for(api, tenant.headers(), run["id"])["status"] == "succeeded"
        assert len(web.received("GET", path)) == 1


class TestDecisions:
    def test_approve_resumes_the_run_which_calls_the_tool_exactly_once(self, api, tenant, web):
        run, approval, path = paused(api, tenant, web)
        r = api.post(
            f"/v1/approvals/{approval['id']}/approve", headers=tenant.headers(Role.OPERATOR)
        )
        assert r.status_code == 200, r.text
        decided = r.json()
        assert decided["status"] == "approved"
        assert decided["decided_by"] == "user-operator"
        assert decided["decided_at"] is not None and decided["reason"] is None

        done = wait_for(api, tenant.headers(), run["id"])
        assert done["status"] == "succeeded", done["error"]
        assert done["output"]["tool_calls"] == 1
        posts = web.received("POST", path)
        assert len(posts) == 1
        assert posts[0].json() == run["input"]
        key = posts[0].headers.get("idempotency-key")
        assert key and key.startswith(f"{run['id']}.")  # the call's stable id
        timeline = events(api, tenant.headers(), run["id"])
        types = [e["type"] for e in timeline]
        assert types[types.index("approval.requested") :] == [
            "approval.requested",
            "approval.approved",
            "run.resumed",
            "tool.started",  # committed before the call: never silently repeated
            "tool.succeeded",
            "model.replied",
            "run.succeeded",
        ]
        assert types.count("run.started") == 1
        assert done["attempts"] == 1

    def test_reject_fails_the_run_with_the_reason_and_never_calls_the_tool(self, api, tenant, web):
        run, approval, path = paused(api, tenant, web)
        r = api.post(
            f"/v1/approvals/{approval['id']}/reject",
            json={"reason": "Not on a Friday."},
            headers=tenant.headers(Role.OPERATOR),
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "rejected"
        assert r.json()["reason"] == "Not on a Friday."
        assert r.json()["decided_by"] == "user-operator"
        failed = api.get(f"/v1/runs/{run['id']}", headers=tenant.headers()).json()
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "ApprovalRejected"
        assert "Not on a Friday." in failed["error"]["message"]
        assert failed["finished_at"] is not None
        assert event_types(api, tenant.headers(), run["id"])[-2:] == [
            "approval.rejected",
            "run.failed",
        ]
        assert web.received(prefix=path) == []

    @pytest.mark.parametrize("first", ["approve", "reject"])
    @pytest.mark.parametrize("second", ["approve", "reject"])
    def test_a_second_decision_is_a_conflict(self, api, tenant, web, first, second):
        run, approval, _ = paused(api, tenant, web)

        def decide(action: str) -> httpx.Response:
            body = {"reason": "no"} if action == "reject" else None
            return api.post(
                f"/v1/approvals/{approval['id']}/{action}", json=body, headers=tenant.headers()
            )

        assert decide(first).status_code == 200
        problem = check_problem(decide(second), 409, "Conflict")
        assert problem["type"].endswith("/problems/approval-decided")
        after = api.get(f"/v1/approvals/{approval['id']}", headers=tenant.headers()).json()
        assert after["status"] == ("approved" if first == "approve" else "rejected")
        wait_for(api, tenant.headers(), run["id"])

    def test_deciding_needs_the_operator_role(self, api, tenant, web):
        _, approval, _ = paused(api, tenant, web)
        h = tenant.headers(Role.VIEWER)
        check_problem(
            api.post(f"/v1/approvals/{approval['id']}/approve", headers=h), 403, "Forbidden"
        )
        check_problem(
            api.post(f"/v1/approvals/{approval['id']}/reject", json={"reason": "x"}, headers=h),
            403,
            "Forbidden",
        )
        assert api.get(f"/v1/approvals/{approval['id']}", headers=h).json()["status"] == "pending"

    def test_an_unknown_approval_is_not_found(self, api, tenant):
        unknown = missing_id("apr")
        check_problem(
            api.get(f"/v1/approvals/{unknown}", headers=tenant.headers()), 404, "NotFound"
        )
        check_problem(
            api.post(f"/v1/approvals/{unknown}/approve", headers=tenant.headers()), 404, "NotFound"
        )

    @pytest.mark.parametrize(
        "body", [{}, {"reason": ""}, {"reason": "x", "extra": 1}, {"reason": 5}]
    )
    def test_a_rejection_needs_a_reason(self, api, tenant, web, body):
        _, approval, _ = paused(api, tenant, web)
        r = api.post(f"/v1/approvals/{approval['id']}/reject", json=body, headers=tenant.headers())
        check_problem(r, 400, "ValidationError")


class TestRace:
    def test_of_eight_concurrent_decisions_exactly_one_wins(self, api, tenant, web):
        run, approval, path = paused(api, tenant, web)
        barrier = threading.Barrier(8)
        h = tenant.headers(Role.OPERATOR)

        def decide(index: int) -> tuple[str, int]:
            action = "approve" if index % 2 == 0 else "reject"
            body = {"reason": f"racer {index}"} if action == "reject" else None
            barrier.wait(timeout=10)
            r = api.post(f"/v1/approvals/{approval['id']}/{action}", json=body, headers=h)
            if r.status_code == 409:
                assert r.json()["type"].endswith("/problems/approval-decided")
            return action, r.status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(decide, range(8)))
        statuses = sorted(status for _, status in results)
        assert statuses == [200] + [409] * 7, results
        winner = next(action for action, status in results if status == 200)

        final = wait_for(api, tenant.headers(), run["id"])
        types = event_types(api, tenant.headers(), run["id"])
        decided = api.get(f"/v1/approvals/{approval['id']}", headers=h).json()
        if winner == "approve":
            assert decided["status"] == "approved"
            assert final["status"] == "succeeded", final["error"]
            assert len(web.received("POST", path)) == 1
            assert types.count("approval.approved") == 1 and types.count("run.resumed") == 1
        else:
            assert decided["status"] == "rejected"
            assert final["status"] == "failed"
            assert final["error"]["code"] == "ApprovalRejected"
            assert web.received(prefix=path) == []
            assert types.count("approval.rejected") == 1
        assert types.count("run.succeeded") + types.count("run.failed") == 1


def test_two_gated_calls_need_two_approvals(api, tenant, web):
    """Each checkpointed call pauses on its own; an approval covers exactly one call."""
    h = tenant.headers()
    member = published_member(
        api,
        h,
        definition(
            ("http_post", "external_write"), ("http_get", "external_read"), rigidity="strict"
        ),
    )
    path = "/two/" + tenant.workspace_id
    run = start(api, h, member["id"], {"url": web.url(path)})
    for tool in ("http_post", "http_get"):
        wait_for(api, h, run["id"], ("waiting_approval",))
        pending = [a for a in approvals_of(api, h, run["id"]) if a["status"] == "pending"]
        assert [a["tool"] for a in pending] == [tool]
        assert api.post(f"/v1/approvals/{pending[0]['id']}/approve", headers=h).status_code == 200
    assert wait_for(api, h, run["id"])["status"] == "succeeded"
    assert [r.method for r in web.received(prefix=path)] == ["POST", "GET"]
