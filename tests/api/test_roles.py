"""Role gating: viewer < operator < author < admin; too low a role answers 403."""

from __future__ import annotations

from typing import Any

import pytest

from domain.kernel import Role
from tests.api.helpers import DEFINITION, create_crew, create_member, unique
from tests.support.openapi_check import check_problem


@pytest.fixture
def resources(client: Any, tenant: Any) -> dict[str, str]:
    h = tenant.headers(Role.AUTHOR)
    crew = create_crew(client, h)
    member = create_member(client, h, crew["id"])
    target = create_member(client, h, crew["id"])
    return {"crew_id": crew["id"], "member_id": member["id"], "target_id": target["id"]}


def _author_requests(r: dict[str, str]) -> dict[str, tuple[str, str, Any]]:
    return {
        "create crew": ("POST", "/v1/crews", {"name": unique("Crew")}),
        "create member": (
            "POST",
            "/v1/members",
            {"crew_id": r["crew_id"], "name": unique("M"), "definition": DEFINITION},
        ),
        "replace draft": ("PUT", f"/v1/members/{r['member_id']}/draft", DEFINITION),
        "publish": ("POST", f"/v1/members/{r['member_id']}/publish", None),
        "replace handoffs": (
            "PUT",
            f"/v1/members/{r['member_id']}/handoffs",
            {"handoffs": [{"target_member_id": r["target_id"]}]},
        ),
    }


AUTHOR_ACTIONS = ["create crew", "create member", "replace draft", "publish", "replace handoffs"]


class TestAuthorOperationsAreGated:
    @pytest.mark.parametrize("action", AUTHOR_ACTIONS)
    @pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR], ids=lambda r: r.label)
    def test_a_role_below_author_is_forbidden(self, client, tenant, resources, role, action):
        method, url, body = _author_requests(resources)[action]
        r = client.request(method, url, json=body, headers=tenant.headers(role))
        problem = check_problem(r, 403, "Forbidden")
        assert problem["error"]["details"] == {"required_role": "author", "role": role.label}

    @pytest.mark.parametrize("action", AUTHOR_ACTIONS)
    @pytest.mark.parametrize("role", [Role.AUTHOR, Role.ADMIN], ids=lambda r: r.label)
    def test_an_author_or_admin_may(self, client, tenant, resources, role, action):
        method, url, body = _author_requests(resources)[action]
        r = client.request(method, url, json=body, headers=tenant.headers(role))
        assert r.status_code in (200, 201), r.text

    def test_a_forbidden_write_changes_nothing(self, client, tenant, resources):
        url = f"/v1/members/{resources['member_id']}/publish"
        check_problem(client.post(url, headers=tenant.headers(Role.OPERATOR)), 403, "Forbidden")
        draft = client.get(f"/v1/members/{resources['member_id']}/draft", headers=tenant.headers())
        assert draft.status_code == 200


class TestWorkspaceUpdateIsAdminOnly:
    @pytest.mark.parametrize(
        "role", [Role.VIEWER, Role.OPERATOR, Role.AUTHOR], ids=lambda r: r.label
    )
    def test_a_role_below_admin_cannot_patch_the_workspace(self, client, tenant, role):
        r = client.patch("/v1/workspace", json={"name": "Nope"}, headers=tenant.headers(role))
        problem = check_problem(r, 403, "Forbidden")
        assert problem["error"]["details"]["required_role"] == "admin"
        assert client.get("/v1/workspace", headers=tenant.headers()).json()["name"] != "Nope"

    def test_an_admin_can_patch_the_workspace(self, client, tenant):
        r = client.patch("/v1/workspace", json={"name": "Yes"}, headers=tenant.headers(Role.ADMIN))
        assert r.status_code == 200


class TestViewersReadEverything:
    def test_a_viewer_reads_every_resource(self, client, tenant, resources):
        h = tenant.headers(Role.VIEWER)
        mid, cid = resources["member_id"], resources["crew_id"]
        for url in (
            "/v1/workspace",
            "/v1/me/workspaces",
            "/v1/crews",
            f"/v1/crews/{cid}",
            f"/v1/crews/{cid}/members",
            "/v1/members",
            f"/v1/members/{mid}",
            f"/v1/members/{mid}/draft",
            f"/v1/members/{mid}/versions",
            f"/v1/members/{mid}/versions/1",
            f"/v1/members/{mid}/handoffs",
        ):
            assert client.get(url, headers=h).status_code == 200, url
