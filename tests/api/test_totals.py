"""include_total=true adds the exact count of the whole list under the same filters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from domain.kernel import Role
from tests.api.helpers import create_crew, create_member, publish
from tests.support.peers import Peer, web_route
from tests.support.runs import POSTER, app_client, start, wait_for
from tests.support.runs import published_member as run_published_member
from tests.support.triggers import create_trigger


def test_without_the_flag_there_is_no_total(client, tenant):
    create_crew(client, tenant.headers())
    assert "total" not in client.get("/v1/crews", headers=tenant.headers()).json()


def test_the_total_counts_every_page_under_the_same_filters(client, tenant):
    h = tenant.headers(Role.ADMIN)
    crew = create_crew(client, h, "Totals crew")
    other = create_crew(client, h)
    members = [create_member(client, h, crew["id"]) for _ in range(3)]
    create_member(client, h, other["id"])
    publish(client, h, members[0]["id"])
    client.post(f"/v1/members/{members[1]['id']}/archive", headers=h)

    def total(path, **params):
        r = client.get(path, params={"include_total": "true", "limit": 1, **params}, headers=h)
        assert r.status_code == 200, r.text
        return r.json()["total"]

    assert total("/v1/crews") == 2
    assert total("/v1/crews", q="totals") == 1
    assert total("/v1/members") == 3  # one archived member is left out
    assert total("/v1/members", include_archived="true") == 4
    assert total("/v1/members", crew_id=crew["id"], status="published") == 1
    assert total(f"/v1/crews/{crew['id']}/members") == 2
    assert total(f"/v1/members/{members[0]['id']}/versions") == 1
    create_trigger(client, h, members[0]["id"], "webhook")
    assert total("/v1/triggers") == 1
    assert total("/v1/triggers", kind="schedule") == 0
    assert total("/v1/audit", action="member.created") == 4
    schedule = create_trigger(client, h, members[0]["id"], "schedule", cron="@daily")
    assert total("/v1/schedules") == 1
    assert total(f"/v1/triggers/{schedule['id']}/invocations") == 0
    client.post("/v1/workspace/members", json={"subject": "counted", "role": "viewer"}, headers=h)
    everyone = client.get("/v1/workspace/members", params={"limit": 200}, headers=h).json()
    assert total("/v1/workspace/members") == len(everyone["items"]) == 5  # 4 roles and one


@pytest.mark.parametrize("path", ["/v1/crews", "/v1/members", "/v1/triggers", "/v1/audit"])
def test_an_empty_list_totals_zero(client, make_tenant, path):
    tenant = make_tenant()
    r = client.get(path, params={"include_total": "true"}, headers=tenant.headers())
    if path == "/v1/audit":
        assert r.json()["total"] == len(r.json()["items"])
    else:
        assert r.json() == {"items": [], "next_cursor": None, "total": 0}


@pytest.fixture(scope="module")
def web() -> Iterator[Peer]:
    peer = Peer(web_route).start()
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def run_api(settings: Any) -> Iterator[httpx.Client]:
    with app_client(settings, tool_http_allowlist=("127.0.0.1",)) as client:
        yield client


def test_runs_and_approvals_total_under_the_same_filters(run_api, make_tenant, web):
    client, tenant = run_api, make_tenant()
    h = tenant.headers(Role.ADMIN)
    gated = run_published_member(client, h, POSTER)
    other = run_published_member(client, h, POSTER)
    runs = [
        start(client, h, gated["id"], {"url": web.url(f"/hook/total-{n}"), "note": "n"})
        for n in range(2)
    ]
    start(client, h, other["id"], {"url": web.url("/hook/total-other"), "note": "n"})
    for run in runs:
        wait_for(client, h, run["id"], ("waiting_approval",))

    def total(path, **params):
        r = client.get(path, params={"include_total": "true", "limit": 1, **params}, headers=h)
        assert r.status_code == 200, r.text
        return r.json()["total"]

    assert total("/v1/runs") == 3
    assert total("/v1/runs", member_id=gated["id"]) == 2
    assert total("/v1/runs", member_id=gated["id"], status="succeeded") == 0
    assert total("/v1/approvals", member_id=gated["id"]) == 2
    assert total("/v1/approvals", run_id=runs[0]["id"]) == 1
    assert total("/v1/approvals", status="approved") == 0
    assert "total" not in client.get("/v1/runs", headers=h).json()
