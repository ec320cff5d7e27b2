"""Optimistic concurrency (issue 14): ETag on every mutable resource, If-Match on its updates
(412 when stale), If-None-Match on its reads (304 while unchanged)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from domain.kernel import Role
from tests.api.helpers import DEFINITION, create_crew, create_member
from tests.support.openapi_check import check_problem
from tests.support.triggers import create_trigger, published_member

Resource = tuple[str, str, Any]  # (read path, update method, update body)


def _crew(client: httpx.Client, h: dict[str, str]) -> Resource:
    crew = create_crew(client, h)
    return f"/v1/crews/{crew['id']}", "PATCH", {"description": "Edited."}


def _member(client: httpx.Client, h: dict[str, str]) -> Resource:
    member = create_member(client, h, create_crew(client, h)["id"])
    return f"/v1/members/{member['id']}", "PATCH", {"name": member["name"] + " (edited)"}


def _draft(client: httpx.Client, h: dict[str, str]) -> Resource:
    member = create_member(client, h, create_crew(client, h)["id"])
    body = {**DEFINITION, "objective": "Edited objective."}
    return f"/v1/members/{member['id']}/draft", "PUT", body


def _handoffs(client: httpx.Client, h: dict[str, str]) -> Resource:
    crew = create_crew(client, h)
    source, target = create_member(client, h, crew["id"]), create_member(client, h, crew["id"])
    body = {"handoffs": [{"target_member_id": target["id"]}]}
    return f"/v1/members/{source['id']}/handoffs", "PUT", body


def _workspace(client: httpx.Client, h: dict[str, str]) -> Resource:
    return "/v1/workspace", "PATCH", {"description": "Edited."}


def _membership(client: httpx.Client, h: dict[str, str]) -> Resource:
    r = client.post(
        "/v1/workspace/members", json={"subject": "etag-user", "role": "viewer"}, headers=h
    )
    assert r.status_code == 201, r.text
    return "/v1/workspace/members/etag-user", "PATCH", {"role": "operator"}


RESOURCES: dict[str, Callable[[httpx.Client, dict[str, str]], Resource]] = {
    "crew": _crew,
    "member": _member,
    "draft": _draft,
    "handoffs": _handoffs,
    "workspace": _workspace,
    "membership": _membership,
}


@pytest.mark.parametrize("kind", list(RESOURCES))
class TestEveryMutableResource:
    def test_a_read_carries_an_etag_and_if_none_match_answers_304(self, client, tenant, kind):
        h = tenant.headers(Role.ADMIN)
        path, _, _ = RESOURCES[kind](client, h)
        first = client.get(path, headers=h)
        assert first.status_code == 200, first.text
        etag = first.headers["ETag"]
        assert etag.startswith('"') and etag.endswith('"')
        again = client.get(path, headers={**h, "If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["ETag"] == etag
        weak = client.get(path, headers={**h, "If-None-Match": f'"other", W/{etag}'})
        assert weak.status_code == 304
        other = client.get(path, headers={**h, "If-None-Match": '"other"'})
        assert other.status_code == 200 and other.json() == first.json()

    def test_an_update_with_the_current_etag_succeeds_and_answers_the_new_one(
        self, client, tenant, kind
    ):
        h = tenant.headers(Role.ADMIN)
        path, method, body = RESOURCES[kind](client, h)
        etag = client.get(path, headers=h).headers["ETag"]
        r = client.request(method, path, json=body, headers={**h, "If-Match": etag})
        assert r.status_code == 200, r.text
        assert r.headers["ETag"] != etag
        assert client.get(path, headers=h).headers["ETag"] == r.headers["ETag"]

    def test_an_update_with_a_stale_etag_is_412_and_changes_nothing(self, client, tenant, kind):
        h = tenant.headers(Role.ADMIN)
        path, method, body = RESOURCES[kind](client, h)
        before = client.get(path, headers=h)
        r = client.request(method, path, json=body, headers={**h, "If-Match": '"stale"'})
        problem = check_problem(r, 412, "PreconditionFailed")
        assert problem["type"] == "/problems/precondition-failed"
        after = client.get(path, headers=h)
        assert after.json() == before.json()
        assert after.headers["ETag"] == before.headers["ETag"]

    def test_if_match_star_means_any_current_state(self, client, tenant, kind):
        h = tenant.headers(Role.ADMIN)
        path, method, body = RESOURCES[kind](client, h)
        r = client.request(method, path, json=body, headers={**h, "If-Match": "*"})
        assert r.status_code == 200, r.text


def test_a_weak_tag_never_satisfies_if_match(client, tenant):
    h = tenant.headers(Role.AUTHOR)
    path, method, body = _crew(client, h)
    etag = client.get(path, headers=h).headers["ETag"]
    r = client.request(method, path, json=body, headers={**h, "If-Match": f"W/{etag}"})
    check_problem(r, 412, "PreconditionFailed")


def test_a_trigger_read_carries_an_etag(client, tenant):
    h = tenant.headers(Role.AUTHOR)
    trigger = create_trigger(
        client, h, published_member(client, h)["id"], "schedule", cron="@daily"
    )
    first = client.get(f"/v1/triggers/{trigger['id']}", headers=h)
    again = client.get(
        f"/v1/triggers/{trigger['id']}", headers={**h, "If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304


def test_a_draft_if_match_fails_once_the_draft_is_published(client, tenant):
    h = tenant.headers(Role.AUTHOR)
    path, method, body = _draft(client, h)
    etag = client.get(path, headers=h).headers["ETag"]
    member_path = path.removesuffix("/draft")
    assert client.post(member_path + "/publish", headers=h).status_code == 200
    r = client.request(method, path, json=body, headers={**h, "If-Match": etag})
    check_problem(r, 412, "PreconditionFailed")
    # Without If-Match the edit forks a new draft, as always.
    assert client.request(method, path, json=body, headers=h).json()["number"] == 2


def test_two_concurrent_draft_edits_with_the_same_etag_give_one_200_and_one_412(client, tenant):
    h = tenant.headers(Role.AUTHOR)
    path, _, _ = _draft(client, h)
    etag = client.get(path, headers=h).headers["ETag"]
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []

    # Both requests go through one client (one app lifespan) at the same time.
    def edit(objective: str) -> None:
        body = {**DEFINITION, "objective": objective}
        barrier.wait()
        answers.append(client.put(path, json=body, headers={**h, "If-Match": etag}))

    threads = [threading.Thread(target=edit, args=(f"Edit {i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.status_code for r in answers) == [200, 412]
    [winner] = [r for r in answers if r.status_code == 200]
    [loser] = [r for r in answers if r.status_code == 412]
    check_problem(loser, 412, "PreconditionFailed")
    current = client.get(path, headers=h)
    assert current.json()["definition"]["objective"] == winner.json()["definition"]["objective"]
    assert current.headers["ETag"] == winner.headers["ETag"]
