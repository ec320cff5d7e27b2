"""Edits of what a consumer created (issue 14): crews and members renamed, moved, archived and
deleted, and what archiving a member means for its runs and triggers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.kernel import Role
from tests.api.helpers import create_crew, create_member, errors_of, missing_id, publish, unique
from tests.support.domain import tick_at
from tests.support.openapi_check import check_problem
from tests.support.triggers import create_trigger, deliver, published_member


def _audit(app, tenant, subject_id):
    with app.context.use_cases.database(write=False) as tx:
        return [e.action for e in tx.audit.entries(tenant.workspace_id, subject_id)]


class TestUpdateCrew:
    def test_an_author_renames_and_redescribes_a_crew(self, client, tenant, app):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        r = client.patch(
            f"/v1/crews/{crew['id']}", json={"name": "Renamed", "description": "New."}, headers=h
        )
        assert r.status_code == 200, r.text
        assert (r.json()["name"], r.json()["description"]) == ("Renamed", "New.")
        assert r.json()["updated_at"] >= crew["updated_at"]
        assert client.get(f"/v1/crews/{crew['id']}", headers=h).json() == r.json()
        assert _audit(app, tenant, crew["id"]) == ["crew.created", "crew.updated"]

    def test_only_the_fields_given_change(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = client.post(
            "/v1/crews", json={"name": unique("C"), "description": "Kept."}, headers=h
        )
        r = client.patch(f"/v1/crews/{crew.json()['id']}", json={"name": "Only name"}, headers=h)
        assert r.json()["description"] == "Kept."

    def test_a_name_another_crew_has_is_a_conflict(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        taken = create_crew(client, h)
        crew = create_crew(client, h)
        r = client.patch(f"/v1/crews/{crew['id']}", json={"name": taken["name"]}, headers=h)
        body = check_problem(r, 409, "Conflict")
        assert body["type"] == "/problems/duplicate-name"

    def test_keeping_its_own_name_is_fine(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        r = client.patch(f"/v1/crews/{crew['id']}", json={"name": crew["name"]}, headers=h)
        assert r.status_code == 200

    def test_a_read_only_field_is_a_validation_error_naming_it(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        r = client.patch(f"/v1/crews/{crew['id']}", json={"id": "crw_x", "name": "N"}, headers=h)
        body = check_problem(r, 400, "ValidationError")
        assert errors_of(body)[0]["pointer"] == "/id"

    def test_an_empty_body_is_a_validation_error(self, client, tenant):
        crew = create_crew(client, tenant.headers(Role.AUTHOR))
        r = client.patch(f"/v1/crews/{crew['id']}", json={}, headers=tenant.headers())
        check_problem(r, 400, "ValidationError")

    def test_a_viewer_may_not_edit(self, client, tenant):
        crew = create_crew(client, tenant.headers(Role.AUTHOR))
        r = client.patch(
            f"/v1/crews/{crew['id']}", json={"name": "x"}, headers=tenant.headers(Role.OPERATOR)
        )
        check_problem(r, 403, "Forbidden")

    def test_another_workspaces_crew_is_not_found(self, client, make_tenant):
        owner, stranger = make_tenant(), make_tenant()
        crew = create_crew(client, owner.headers())
        r = client.patch(f"/v1/crews/{crew['id']}", json={"name": "x"}, headers=stranger.headers())
        check_problem(r, 404, "NotFound")
        assert client.get(f"/v1/crews/{crew['id']}", headers=owner.headers()).json() == crew


class TestDeleteCrew:
    def test_an_empty_crew_is_deleted(self, client, tenant, app):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        r = client.delete(f"/v1/crews/{crew['id']}", headers=h)
        assert r.status_code == 204 and r.content == b""
        check_problem(client.get(f"/v1/crews/{crew['id']}", headers=h), 404, "NotFound")
        assert _audit(app, tenant, crew["id"]) == ["crew.created", "crew.deleted"]

    def test_a_crew_with_members_is_a_conflict_naming_why(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        member = create_member(client, h, crew["id"])
        client.post(f"/v1/members/{member['id']}/archive", headers=h)
        body = check_problem(client.delete(f"/v1/crews/{crew['id']}", headers=h), 409, "Conflict")
        assert body["type"] == "/problems/crew-not-empty"
        assert "1 member(s)" in body["error"]["details"]["reasons"][0]

    def test_an_unknown_crew_is_not_found(self, client, tenant):
        r = client.delete(f"/v1/crews/{missing_id('crw')}", headers=tenant.headers())
        check_problem(r, 404, "NotFound")

    def test_a_viewer_may_not_delete(self, client, tenant):
        crew = create_crew(client, tenant.headers(Role.AUTHOR))
        r = client.delete(f"/v1/crews/{crew['id']}", headers=tenant.headers(Role.VIEWER))
        check_problem(r, 403, "Forbidden")


class TestUpdateMember:
    def test_a_member_is_renamed_and_moved_to_another_crew(self, client, tenant, app):
        h = tenant.headers(Role.AUTHOR)
        first, second = create_crew(client, h), create_crew(client, h)
        member = create_member(client, h, first["id"])
        r = client.patch(
            f"/v1/members/{member['id']}",
            json={"name": "Moved", "crew_id": second["id"]},
            headers=h,
        )
        assert r.status_code == 200, r.text
        assert (r.json()["name"], r.json()["crew_id"]) == ("Moved", second["id"])
        listed = client.get(f"/v1/crews/{second['id']}/members", headers=h).json()["items"]
        assert [m["id"] for m in listed] == [member["id"]]
        assert client.get(f"/v1/crews/{first['id']}/members", headers=h).json()["items"] == []
        assert _audit(app, tenant, member["id"])[-1] == "member.updated"

    def test_an_unknown_crew_is_not_found_with_a_pointer(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        r = client.patch(
            f"/v1/members/{member['id']}", json={"crew_id": missing_id("crw")}, headers=h
        )
        body = check_problem(r, 404, "NotFound")
        assert body["error"]["details"]["pointer"] == "/crew_id"

    def test_a_name_another_member_has_is_a_conflict(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        taken = create_member(client, h, crew["id"])
        member = create_member(client, h, crew["id"])
        r = client.patch(f"/v1/members/{member['id']}", json={"name": taken["name"]}, headers=h)
        assert check_problem(r, 409, "Conflict")["type"] == "/problems/duplicate-name"

    def test_read_only_fields_are_validation_errors_naming_them(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        r = client.patch(
            f"/v1/members/{member['id']}", json={"status": "published", "name": "x"}, headers=h
        )
        body = check_problem(r, 400, "ValidationError")
        assert errors_of(body)[0]["pointer"] == "/status"
        assert "status" in errors_of(body)[0]["message"]

    def test_another_workspaces_member_is_not_found(self, client, make_tenant):
        owner, stranger = make_tenant(), make_tenant()
        member = create_member(client, owner.headers(), create_crew(client, owner.headers())["id"])
        r = client.patch(
            f"/v1/members/{member['id']}", json={"name": "x"}, headers=stranger.headers()
        )
        check_problem(r, 404, "NotFound")


class TestDeleteMember:
    def test_a_never_published_member_is_deleted_with_its_drafts(self, client, tenant, app):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        assert client.delete(f"/v1/members/{member['id']}", headers=h).status_code == 204
        check_problem(client.get(f"/v1/members/{member['id']}", headers=h), 404, "NotFound")
        check_problem(
            client.get(f"/v1/members/{member['id']}/versions/1", headers=h), 404, "NotFound"
        )
        assert _audit(app, tenant, member["id"])[-1] == "member.deleted"

    def test_a_published_member_is_a_conflict(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = published_member(client, h)
        r = client.delete(f"/v1/members/{member['id']}", headers=h)
        body = check_problem(r, 409, "Conflict")
        assert body["type"] == "/problems/member-in-use"
        assert "it was published" in body["error"]["details"]["reasons"]

    def test_a_member_others_hand_off_to_is_a_conflict(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        source, target = create_member(client, h, crew["id"]), create_member(client, h, crew["id"])
        r = client.put(
            f"/v1/members/{source['id']}/handoffs",
            json={"handoffs": [{"target_member_id": target["id"]}]},
            headers=h,
        )
        assert r.status_code == 200, r.text
        body = check_problem(
            client.delete(f"/v1/members/{target['id']}", headers=h), 409, "Conflict"
        )
        assert body["error"]["details"]["reasons"] == ["other members hand off to it"]
        # The source's own handoffs go with it.
        assert client.delete(f"/v1/members/{source['id']}", headers=h).status_code == 204
        assert client.delete(f"/v1/members/{target['id']}", headers=h).status_code == 204

    def test_a_viewer_may_not_delete(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        r = client.delete(f"/v1/members/{member['id']}", headers=tenant.headers(Role.VIEWER))
        check_problem(r, 403, "Forbidden")


class TestArchiveMember:
    def test_an_archived_member_is_hidden_from_default_lists(self, client, tenant, app):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        kept, archived = create_member(client, h, crew["id"]), create_member(client, h, crew["id"])
        r = client.post(f"/v1/members/{archived['id']}/archive", headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["archived"] is True and r.json()["archived_at"] is not None
        for path in ("/v1/members", f"/v1/crews/{crew['id']}/members"):
            default = client.get(path, headers=h).json()["items"]
            everything = client.get(path, params={"include_archived": "true"}, headers=h)
            assert [m["id"] for m in default if m["crew_id"] == crew["id"]] == [kept["id"]]
            listed = [m["id"] for m in everything.json()["items"] if m["crew_id"] == crew["id"]]
            assert listed == [kept["id"], archived["id"]]
        # Still readable: the handle, its draft and versions.
        assert client.get(f"/v1/members/{archived['id']}", headers=h).json()["archived"] is True
        assert client.get(f"/v1/members/{archived['id']}/versions", headers=h).status_code == 200
        assert _audit(app, tenant, archived["id"])[-1] == "member.archived"

    def test_archiving_twice_changes_nothing_and_unarchive_brings_it_back(
        self, client, tenant, app
    ):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        first = client.post(f"/v1/members/{member['id']}/archive", headers=h).json()
        second = client.post(f"/v1/members/{member['id']}/archive", headers=h).json()
        assert first == second
        back = client.post(f"/v1/members/{member['id']}/unarchive", headers=h)
        assert back.status_code == 200
        assert (back.json()["archived"], back.json()["archived_at"]) == (False, None)
        assert _audit(app, tenant, member["id"])[-2:] == ["member.archived", "member.unarchived"]

    def test_an_archived_member_cannot_be_run_until_unarchived(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = published_member(client, h)
        client.post(f"/v1/members/{member['id']}/archive", headers=h)
        for body in ({}, {"dry_run": True}):
            r = client.post(f"/v1/members/{member['id']}/runs", json=body, headers=h)
            assert check_problem(r, 409, "Conflict")["type"] == "/problems/member-archived"
        client.post(f"/v1/members/{member['id']}/unarchive", headers=h)
        r = client.post(f"/v1/members/{member['id']}/runs", json={}, headers=h)
        assert r.status_code == 202, r.text

    def test_webhooks_of_an_archived_member_answer_as_a_disabled_trigger(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = published_member(client, h)
        trigger = create_trigger(client, h, member["id"], "webhook")
        disabled = create_trigger(client, h, member["id"], "webhook")
        client.post(f"/v1/triggers/{disabled['id']}/disable", headers=h)
        client.post(f"/v1/members/{member['id']}/archive", headers=h)
        archived_answer = deliver(client, trigger, {"n": 1})
        disabled_answer = deliver(client, disabled, {"n": 1})
        assert archived_answer.status_code == disabled_answer.status_code == 401
        assert archived_answer.json()["type"] == disabled_answer.json()["type"]
        assert archived_answer.json()["detail"] == disabled_answer.json()["detail"]
        logged = client.get(f"/v1/triggers/{trigger['id']}/invocations", headers=h).json()
        assert [(i["outcome"], i["reason"]) for i in logged["items"]] == [
            ("rejected", "member-archived")
        ]
        client.post(f"/v1/members/{member['id']}/unarchive", headers=h)
        assert deliver(client, trigger, {"n": 2}).status_code == 202

    def test_schedules_of_an_archived_member_skip(self, client, tenant, app):
        h = tenant.headers(Role.AUTHOR)
        member = published_member(client, h)
        trigger = create_trigger(client, h, member["id"], "schedule", cron="* * * * *")
        client.post(f"/v1/members/{member['id']}/archive", headers=h)
        soon = datetime.now(UTC) + timedelta(minutes=2)
        [firing] = [
            f for f in tick_at(app.context.use_cases, soon) if f.trigger_id == trigger["id"]
        ]
        assert (firing.run_id, firing.reason) == (None, "member-archived")
        runs = client.get("/v1/runs", params={"member_id": member["id"]}, headers=h).json()
        assert runs["items"] == []

    def test_an_unknown_member_is_not_found(self, client, tenant):
        r = client.post(f"/v1/members/{missing_id('mem')}/archive", headers=tenant.headers())
        check_problem(r, 404, "NotFound")

    def test_a_viewer_may_not_archive(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        for action in ("archive", "unarchive"):
            r = client.post(
                f"/v1/members/{member['id']}/{action}", headers=tenant.headers(Role.VIEWER)
            )
            check_problem(r, 403, "Forbidden")


def test_publishing_stays_possible_for_an_archived_member(client, tenant):
    h = tenant.headers(Role.AUTHOR)
    member = create_member(client, h, create_crew(client, h)["id"])
    client.post(f"/v1/members/{member['id']}/archive", headers=h)
    assert publish(client, h, member["id"])["status"] == "published"
