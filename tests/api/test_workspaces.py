"""The caller's workspace and the workspaces the caller belongs to."""

from __future__ import annotations

import secrets

from domain.kernel import Role
from tests.api.helpers import errors_of
from tests.support.openapi_check import check_problem


class TestGetWorkspace:
    def test_a_viewer_reads_the_workspace_named_by_the_credential(self, client, make_tenant):
        tenant = make_tenant("Acme support")
        r = client.get("/v1/workspace", headers=tenant.headers(Role.VIEWER))
        assert r.status_code == 200
        assert r.json()["id"] == tenant.workspace_id
        assert r.json()["name"] == "Acme support"

    def test_without_credentials_the_workspace_is_unauthorized(self, client):
        check_problem(client.get("/v1/workspace"), 401, "Unauthorized")


class TestUpdateWorkspace:
    def test_an_admin_renames_and_describes_the_workspace(self, client, tenant):
        h = tenant.headers(Role.ADMIN)
        r = client.patch("/v1/workspace", json={"name": "Renamed"}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "Renamed"
        r = client.patch("/v1/workspace", json={"description": "Where support lives."}, headers=h)
        assert r.json() == {**r.json(), "name": "Renamed", "description": "Where support lives."}
        assert client.get("/v1/workspace", headers=h).json()["description"] == (
            "Where support lives."
        )

    def test_an_empty_patch_is_a_validation_error(self, client, tenant):
        r = client.patch("/v1/workspace", json={}, headers=tenant.headers(Role.ADMIN))
        body = check_problem(r, 400, "ValidationError")
        assert errors_of(body)[0]["reason"] == "minProperties"

    def test_the_workspace_id_cannot_be_changed_through_the_body(self, client, tenant):
        r = client.patch(
            "/v1/workspace", json={"id": "wsp_other"}, headers=tenant.headers(Role.ADMIN)
        )
        body = check_problem(r, 400, "ValidationError")
        assert errors_of(body)[0]["pointer"] == "/id"


class TestListMyWorkspaces:
    def test_every_workspace_of_the_subject_is_listed_and_the_current_one_flagged(
        self, client, make_tenant, use_cases
    ):
        subject = f"user-{secrets.token_hex(6)}"
        tenants = [make_tenant(f"Workspace {i}") for i in range(3)]
        for t in tenants:
            use_cases.workspaces.ensure_member(t.workspace_id, subject, Role.OPERATOR)
        current = tenants[1]
        r = client.get("/v1/me/workspaces", headers=current.headers(Role.OPERATOR, subject))
        assert r.status_code == 200
        items = r.json()["items"]
        assert {i["workspace_id"] for i in items} == {t.workspace_id for t in tenants}
        assert [i["workspace_id"] for i in items if i["current"]] == [current.workspace_id]
        assert {i["role"] for i in items} == {"operator"}
        assert r.json()["next_cursor"] is None

    def test_a_limit_of_zero_is_a_validation_error(self, client, tenant):
        r = client.get("/v1/me/workspaces?limit=0", headers=tenant.headers(Role.VIEWER))
        body = check_problem(r, 400, "ValidationError")
        assert errors_of(body)[0] == {**errors_of(body)[0], "location": "query", "name": "limit"}

    def test_a_service_caller_sees_its_workspace_as_current(self, client, tenant, jwks):
        token = jwks.service_token(workspace_id=tenant.workspace_id, sub="svc-only")
        r = client.get("/v1/me/workspaces", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        assert [(i["workspace_id"], i["current"]) for i in r.json()["items"]] == [
            (tenant.workspace_id, True)
        ]
