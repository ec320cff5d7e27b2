"""Crews: create, read, list, and list a crew's members."""

from __future__ import annotations

from domain.kernel import Role
from tests.api.helpers import create_crew, create_member, errors_of, missing_id, unique
from tests.support.openapi_check import check_problem


class TestCreateCrew:
    def test_an_author_creates_a_crew_and_gets_its_location(self, client, tenant):
        r = client.post(
            "/v1/crews",
            json={"name": "Support", "description": "First line."},
            headers=tenant.headers(Role.AUTHOR),
        )
        assert r.status_code == 201, r.text
        crew = r.json()
        assert (crew["name"], crew["description"]) == ("Support", "First line.")
        assert r.headers["location"] == f"/v1/crews/{crew['id']}"
        assert crew["id"].startswith("crw_")

    def test_a_crew_name_already_used_in_the_workspace_is_a_conflict(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        create_crew(client, h, "Billing")
        body = check_problem(
            client.post("/v1/crews", json={"name": "Billing"}, headers=h), 409, "Conflict"
        )
        assert body["type"] == "/problems/duplicate-name"
        assert body["error"]["details"]["pointer"] == "/name"

    def test_the_same_crew_name_is_free_in_another_workspace(self, client, make_tenant):
        first, second = make_tenant(), make_tenant()
        one = client.post("/v1/crews", json={"name": "Shared name"}, headers=first.headers())
        two = client.post("/v1/crews", json={"name": "Shared name"}, headers=second.headers())
        assert (one.status_code, two.status_code) == (201, 201)
        assert one.json()["id"] != two.json()["id"]

    def test_a_crew_without_a_name_is_a_validation_error(self, client, tenant):
        r = client.post("/v1/crews", json={"description": "x"}, headers=tenant.headers())
        body = check_problem(r, 400, "ValidationError")
        assert errors_of(body)[0]["reason"] == "required"


class TestGetCrew:
    def test_a_viewer_reads_a_crew(self, client, tenant):
        crew = create_crew(client, tenant.headers(Role.AUTHOR))
        r = client.get(f"/v1/crews/{crew['id']}", headers=tenant.headers(Role.VIEWER))
        assert r.status_code == 200
        assert r.json() == crew

    def test_an_unknown_crew_is_not_found(self, client, tenant):
        r = client.get(f"/v1/crews/{missing_id('crw')}", headers=tenant.headers())
        body = check_problem(r, 404, "NotFound")
        assert body["type"] == "/problems/not-found"

    def test_a_malformed_crew_id_is_a_validation_error_naming_the_parameter(self, client, tenant):
        r = client.get("/v1/crews/mem_00000000000000000000000000", headers=tenant.headers())
        body = check_problem(r, 400, "ValidationError")
        assert errors_of(body)[0]["name"] == "crew_id"
        assert errors_of(body)[0]["location"] == "path"


class TestListCrews:
    def test_crews_are_listed_oldest_first(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        made = [create_crew(client, h)["id"] for _ in range(3)]
        r = client.get("/v1/crews", headers=tenant.headers(Role.VIEWER))
        assert r.status_code == 200
        assert [c["id"] for c in r.json()["items"]] == made
        assert r.json()["next_cursor"] is None

    def test_a_cursor_that_is_not_well_formed_is_a_validation_error(self, client, tenant):
        r = client.get("/v1/crews?cursor=NOT-OK!", headers=tenant.headers())
        body = check_problem(r, 400, "ValidationError")
        assert errors_of(body)[0]["name"] == "cursor"


class TestListCrewMembers:
    def test_only_the_crews_own_members_are_listed(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew, other = create_crew(client, h), create_crew(client, h)
        mine = [create_member(client, h, crew["id"])["id"] for _ in range(2)]
        create_member(client, h, other["id"], unique("Elsewhere"))
        r = client.get(f"/v1/crews/{crew['id']}/members", headers=tenant.headers(Role.VIEWER))
        assert r.status_code == 200
        assert [m["id"] for m in r.json()["items"]] == mine

    def test_the_members_of_an_unknown_crew_are_not_found(self, client, tenant):
        r = client.get(f"/v1/crews/{missing_id('crw')}/members", headers=tenant.headers())
        check_problem(r, 404, "NotFound")
