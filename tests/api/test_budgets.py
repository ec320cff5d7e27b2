"""Budgets (issue 16): CRUD, bad input, and what a reached limit does to runs (``block``
fails them and refuses new ones, ``approve`` asks a human for every further model call and
``spend`` call), with ``budget.warning``/``budget.exceeded`` in the workspace event log."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from domain.database import Database
from domain.kernel.actor import Role
from tests.api.helpers import errors_of, missing_id
from tests.support.runs import (
    NOTES,
    app_client,
    approvals_of,
    published_member,
    start,
    wait_for,
)

#: Less than any model call costs: the first call reaches the limit.
TINY = 0.000001


@pytest.fixture(scope="module")
def api(settings: Any) -> Iterator[httpx.Client]:
    with app_client(settings, tool_http_allowlist=("127.0.0.1",)) as c:
        yield c


def budget(api: httpx.Client, tenant: Any, **body: Any) -> dict[str, Any]:
    body = {"name": "Team", "scope": {"type": "workspace"}, "period": "day", **body}
    body.setdefault("limit_units", 10)
    r = api.post("/v1/budgets", json=body, headers=tenant.headers())
    assert r.status_code == 201, r.text
    return dict(r.json())


def workspace_events(database: Database, workspace_id: str) -> list[tuple[str, dict[str, Any]]]:
    with database() as tx:
        return [(s.kind, s.data) for s in tx.events.read(workspace_id, 0, 1000)]


class TestCrud:
    def test_create_read_list_update_delete(self, api, tenant):
        crew = api.post(
            "/v1/crews", json={"name": f"c-{secrets.token_hex(4)}"}, headers=tenant.headers()
        )
        created = budget(
            api,
            tenant,
            scope={"type": "crew", "id": crew.json()["id"]},
            period="month",
            timezone="Europe/Amsterdam",
            limit_units=500,
            on_exceeded="approve",
        )
        assert created["scope"] == {"type": "crew", "id": crew.json()["id"]}
        assert created["warning_percent"] == 80
        assert created["usage"]["spent_units"] == 0 and created["usage"]["state"] == "ok"
        assert len(created["usage"]["period"]) == 7  # 2026-11
        path = f"/v1/budgets/{created['id']}"
        got = api.get(path, headers=tenant.headers())
        assert got.status_code == 200 and got.json()["id"] == created["id"]
        listed = api.get("/v1/budgets", headers=tenant.headers()).json()["items"]
        assert created["id"] in [b["id"] for b in listed]
        stale = '"0123456789abcdef0123456789abcdef"'
        r = api.patch(
            path, json={"limit_units": 1}, headers={**tenant.headers(), "If-Match": stale}
        )
        assert r.status_code == 412, r.text
        h = {**tenant.headers(), "If-Match": got.headers["ETag"]}
        r = api.patch(path, json={"limit_units": 750, "warning_percent": 50}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["limit_units"] == 750 and r.json()["warning_percent"] == 50
        assert api.delete(path, headers=tenant.headers()).status_code == 204
        assert api.get(path, headers=tenant.headers()).status_code == 404

    def test_only_admins_and_only_their_workspace(self, api, tenant, make_tenant):
        created = budget(api, tenant)
        r = api.get("/v1/budgets", headers=tenant.headers(Role.AUTHOR))
        assert r.status_code == 403
        other = make_tenant()
        path = f"/v1/budgets/{created['id']}"
        assert api.get(path, headers=other.headers()).status_code == 404
        assert api.patch(path, json={"name": "x"}, headers=other.headers()).status_code == 404
        assert api.delete(path, headers=other.headers()).status_code == 404


class TestBadInput:
    @pytest.mark.parametrize(
        ("change", "pointer"),
        [
            ({"limit_units": 0}, "/limit_units"),
            ({"limit_units": -3}, "/limit_units"),
            ({"warning_percent": 0}, "/warning_percent"),
            ({"warning_percent": 101}, "/warning_percent"),
        ],
    )
    def test_a_bad_limit_or_threshold_is_400_naming_it(self, api, tenant, change, pointer):
        body = {"name": "B", "scope": {"type": "workspace"}, "period": "day", "limit_units": 5}
        r = api.post("/v1/budgets", json={**body, **change}, headers=tenant.headers())
        assert r.status_code == 400, r.text
        assert pointer in [e.get("pointer") for e in errors_of(r.json())]
        created = budget(api, tenant)
        r = api.patch(f"/v1/budgets/{created['id']}", json=change, headers=tenant.headers())
        assert r.status_code == 400, r.text

    def test_an_unknown_time_zone_is_400(self, api, tenant):
        r = api.post(
            "/v1/budgets",
            json={
                "name": "B",
                "scope": {"type": "workspace"},
                "period": "day",
                "limit_units": 5,
                "timezone": "Mars/Olympus",
            },
            headers=tenant.headers(),
        )
        assert r.status_code == 400, r.text

    def test_a_crew_of_another_workspace_is_404_naming_it(self, api, tenant):
        r = api.post(
            "/v1/budgets",
            json={
                "name": "B",
                "scope": {"type": "crew", "id": missing_id("crw")},
                "period": "day",
                "limit_units": 5,
            },
            headers=tenant.headers(),
        )
        assert r.status_code == 404, r.text
        assert r.json()["error"]["details"]["pointer"] == "/scope/id"

    @pytest.mark.parametrize(
        "scope", [{"type": "crew"}, {"type": "workspace", "id": "crw_01m8pmmvzwa8drzeyes5nnx3bq"}]
    )
    def test_a_missing_or_superfluous_scope_id_is_409_naming_it(self, api, tenant, scope):
        r = api.post(
            "/v1/budgets",
            json={"name": "B", "scope": scope, "period": "day", "limit_units": 5},
            headers=tenant.headers(),
        )
        assert r.status_code == 409, r.text
        assert r.json()["type"] == "/problems/budget-scope"
        assert r.json()["error"]["details"]["pointer"] == "/scope/id"


class TestBlock:
    def test_a_reached_limit_fails_the_run_and_refuses_new_ones(self, api, tenant, database):
        member = published_member(api, tenant.headers(), NOTES)
        created = budget(
            api, tenant, scope={"type": "member", "id": member["id"]}, limit_units=TINY
        )
        run = start(api, tenant.headers(), member["id"])
        run = wait_for(api, tenant.headers(), run["id"])
        assert run["status"] == "failed"
        assert run["error"]["code"] == "BudgetExceeded", run["error"]
        got = api.get(f"/v1/budgets/{created['id']}", headers=tenant.headers()).json()
        assert got["usage"]["state"] == "exceeded" and got["usage"]["reserved_units"] == 0
        r = api.post(
            f"/v1/members/{member['id']}/runs", json={"input": {}}, headers=tenant.headers()
        )
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "BudgetExceeded"
        assert r.json()["type"] == "/problems/budget-exceeded"
        assert r.json()["error"]["details"]["budget_id"] == created["id"]
        kinds = [
            k
            for k, d in workspace_events(database, tenant.workspace_id)
            if d.get("budget_id") == created["id"]
        ]
        assert kinds == ["budget.warning", "budget.exceeded"]
        # Raising the limit lets runs in again.
        r = api.patch(
            f"/v1/budgets/{created['id']}", json={"limit_units": 1000}, headers=tenant.headers()
        )
        assert r.status_code == 200, r.text
        assert (
            wait_for(api, tenant.headers(), start(api, tenant.headers(), member["id"])["id"])[
                "status"
            ]
            == "succeeded"
        )

    def test_a_budget_of_another_member_does_not_apply(self, api, tenant):
        member = published_member(api, tenant.headers(), NOTES)
        other = published_member(api, tenant.headers(), NOTES)
        budget(api, tenant, scope={"type": "member", "id": other["id"]}, limit_units=TINY)
        run = wait_for(api, tenant.headers(), start(api, tenant.headers(), member["id"])["id"])
        assert run["status"] == "succeeded"


class TestApprove:
    def test_every_further_model_call_waits_for_an_approval_naming_the_budget(self, api, tenant):
        member = published_member(api, tenant.headers(), NOTES)
        created = budget(
            api,
            tenant,
            scope={"type": "member", "id": member["id"]},
            limit_units=TINY,
            on_exceeded="approve",
        )
        run = start(api, tenant.headers(), member["id"])
        decided = 0
        while True:
            run = wait_for(
                api, tenant.headers(), run["id"], ("waiting_approval", "succeeded", "failed")
            )
            if run["status"] != "waiting_approval":
                break
            [approval] = approvals_of(api, tenant.headers(), run["id"])
            assert approval["budget_id"] == created["id"]
            assert approval["tool"] == "model" and approval["effect_class"] == "spend"
            r = api.post(f"/v1/approvals/{approval['id']}/approve", headers=tenant.headers())
            assert r.status_code == 200, r.text
            decided += 1
            assert decided < 5
        assert run["status"] == "succeeded", run["error"]
        assert decided == 2  # the offline model answers in three calls: the first was admitted
