"""Cancelling runs over HTTP: a waiting run and its approval at once, a running run at its next
step boundary (no further step is written), a finished run answers 409, another workspace's
run 404."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from domain.kernel import Role
from tests.api.helpers import missing_id
from tests.support.openapi_check import check_problem
from tests.support.peers import Peer, Recorded, Reply, json_reply
from tests.support.runs import (
    GETTER,
    NOTES,
    POSTER,
    app_client,
    approvals_of,
    event_types,
    published_member,
    run_to_end,
    start,
    wait_for,
)


class Gate:
    """A target whose GETs wait until the test opens the gate; POSTs answer at once."""

    def __init__(self) -> None:
        self.open = threading.Event()

    def __call__(self, request: Recorded) -> Reply:
        if request.method == "GET":
            self.open.wait(30)
        return json_reply({"ok": True})


@pytest.fixture(scope="module")
def gate() -> Gate:
    return Gate()


@pytest.fixture(scope="module")
def web(gate: Gate) -> Iterator[Peer]:
    peer = Peer(gate).start()
    yield peer
    gate.open.set()
    peer.close()


@pytest.fixture(scope="module")
def api(settings: Any) -> Iterator[httpx.Client]:
    with app_client(settings, tool_http_allowlist=("127.0.0.1",)) as c:
        yield c


def cancel(api: httpx.Client, headers: dict[str, str], run_id: str) -> httpx.Response:
    return api.post(f"/v1/runs/{run_id}/cancel", headers=headers)


class TestCancel:
    def test_a_waiting_run_and_its_approval_are_cancelled_at_once(self, api, tenant, web):
        member = published_member(api, tenant.headers(Role.AUTHOR), POSTER)
        h = tenant.headers(Role.OPERATOR)
        run = start(api, h, member["id"], {"url": web.url("/never")})
        wait_for(api, h, run["id"], ("waiting_approval",))
        [approval] = approvals_of(api, h, run["id"])

        r = cancel(api, h, run["id"])
        assert r.status_code == 200, r.text
        cancelled = r.json()
        assert cancelled["status"] == "cancelled" and cancelled["finished_at"] is not None
        assert api.get(f"/v1/runs/{run['id']}", headers=h).json() == cancelled
        assert approvals_of(api, h, run["id"]) == []  # no longer pending
        closed = api.get(f"/v1/approvals/{approval['id']}", headers=h).json()
        assert (closed["status"], closed["decided_by"]) == ("cancelled", "user-operator")
        assert event_types(api, h, run["id"])[-1] == "run.cancelled"
        check_problem(
            api.post(f"/v1/approvals/{approval['id']}/approve", headers=h), 409, "Conflict"
        )
        time.sleep(0.3)
        assert web.received("POST", "/never") == []  # the call never started

    def test_a_running_run_stops_at_its_next_step_boundary(self, api, tenant, web, gate):
        member = published_member(api, tenant.headers(Role.AUTHOR), GETTER)
        h = tenant.headers(Role.OPERATOR)
        path = f"/gate/{tenant.workspace_id}"
        run = start(api, h, member["id"], {"url": web.url(path)})
        web.wait_for(1, prefix=path)  # the run is inside its tool call
        assert api.get(f"/v1/runs/{run['id']}", headers=h).json()["status"] == "running"

        r = cancel(api, h, run["id"])
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "cancelled"
        gate.open.set()  # the call returns; its result is dropped, no further step runs
        time.sleep(0.5)
        after = api.get(f"/v1/runs/{run['id']}", headers=h).json()
        assert after["status"] == "cancelled" and after["output"] is None
        types = event_types(api, h, run["id"])
        assert types[-1] == "run.cancelled"
        assert "tool.succeeded" not in types and types.count("model.replied") == 1
        assert len(web.received(prefix=path)) == 1

    @pytest.mark.parametrize("twice", [False, True])
    def test_a_finished_run_answers_409(self, api, tenant, twice):
        h = tenant.headers(Role.OPERATOR)
        member = published_member(api, tenant.headers(Role.AUTHOR), NOTES)
        run = run_to_end(api, h, member["id"])
        if twice:
            member = published_member(api, tenant.headers(Role.AUTHOR), POSTER)
            run = start(api, h, member["id"], {"url": "http://127.0.0.1:9/"})
            wait_for(api, h, run["id"], ("waiting_approval",))
            assert cancel(api, h, run["id"]).status_code == 200
        problem = check_problem(cancel(api, h, run["id"]), 409, "Conflict")
        assert problem["type"].endswith("/problems/run-finished")

    def test_another_workspace_s_run_is_not_found_and_viewers_may_not(self, api, make_tenant, web):
        a, b = make_tenant(), make_tenant()
        member = published_member(api, a.headers(Role.AUTHOR), POSTER)
        run = start(api, a.headers(Role.OPERATOR), member["id"], {"url": web.url("/x")})
        wait_for(api, a.headers(), run["id"], ("waiting_approval",))
        check_problem(cancel(api, b.headers(Role.ADMIN), run["id"]), 404, "NotFound")
        check_problem(cancel(api, a.headers(Role.VIEWER), run["id"]), 403, "Forbidden")
        check_problem(cancel(api, a.headers(), missing_id("run")), 404, "NotFound")
        assert api.get(f"/v1/runs/{run['id']}", headers=a.headers()).json()["status"] == (
            "waiting_approval"
        )
