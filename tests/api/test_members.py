"""Members: create, read, drafts, publishing and versions."""

from __future__ import annotations

import copy

from domain.kernel import Role
from tests.api.helpers import (
    DEFINITION,
    create_crew,
    create_member,
    errors_of,
    missing_id,
    publish,
    unique,
)
from tests.support.openapi_check import check_problem

DUPLICATE_TOOLS = {
    "objective": "Two tools, one name.",
    "tools": [
        {"name": "send_email", "effect_class": "external_write"},
        {"name": "send_email", "effect_class": "internal"},
    ],
}


class TestCreateMember:
    def test_an_author_creates_a_member_with_version_one_as_its_draft(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        r = client.post(
            "/v1/members",
            json={"crew_id": crew["id"], "name": "Digest", "definition": DEFINITION},
            headers=h,
        )
        assert r.status_code == 201, r.text
        member = r.json()
        assert r.headers["location"] == f"/v1/members/{member['id']}"
        assert member["status"] == "draft"
        assert member["draft_version_number"] == 1
        assert member["active_version_id"] is None
        assert member["identity"] is None
        assert member["crew_id"] == crew["id"]

    def test_an_unknown_crew_is_not_found_with_a_pointer_to_crew_id(self, client, tenant):
        r = client.post(
            "/v1/members",
            json={"crew_id": missing_id("crw"), "name": "Orphan", "definition": DEFINITION},
            headers=tenant.headers(Role.AUTHOR),
        )
        body = check_problem(r, 404, "NotFound")
        assert body["error"]["details"]["pointer"] == "/crew_id"

    def test_a_member_name_already_used_in_the_workspace_is_a_conflict(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        create_member(client, h, crew["id"], "Twin")
        r = client.post(
            "/v1/members",
            json={"crew_id": crew["id"], "name": "Twin", "definition": DEFINITION},
            headers=h,
        )
        body = check_problem(r, 409, "Conflict")
        assert body["type"] == "/problems/duplicate-name"

    def test_two_tools_with_one_name_are_a_conflict_pointing_at_the_second(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        r = client.post(
            "/v1/members",
            json={"crew_id": crew["id"], "name": unique("Dup"), "definition": DUPLICATE_TOOLS},
            headers=h,
        )
        body = check_problem(r, 409, "Conflict")
        assert body["type"] == "/problems/duplicate-tool"
        assert body["error"]["details"]["pointer"] == "/definition/tools/1/name"

    def test_a_member_without_a_definition_is_a_validation_error(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        r = client.post("/v1/members", json={"crew_id": crew["id"], "name": "x"}, headers=h)
        body = check_problem(r, 400, "ValidationError")
        assert errors_of(body)[0]["reason"] == "required"
        assert "definition" in errors_of(body)[0]["message"]


class TestGetMember:
    def test_a_viewer_reads_a_member(self, client, tenant):
        crew = create_crew(client, tenant.headers())
        member = create_member(client, tenant.headers(), crew["id"])
        r = client.get(f"/v1/members/{member['id']}", headers=tenant.headers(Role.VIEWER))
        assert r.status_code == 200
        assert r.json() == member

    def test_an_unknown_member_is_not_found(self, client, tenant):
        r = client.get(f"/v1/members/{missing_id('mem')}", headers=tenant.headers())
        check_problem(r, 404, "NotFound")


class TestGetDraft:
    def test_the_draft_holds_the_definition_with_defaults_filled_in(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        member = create_member(client, h, crew["id"], definition={"objective": "Only this."})
        r = client.get(f"/v1/members/{member['id']}/draft", headers=tenant.headers(Role.VIEWER))
        assert r.status_code == 200
        draft = r.json()
        assert (draft["number"], draft["status"], draft["program"]) == (1, "draft", None)
        defaults = {
            "objective": "Only this.",
            "instructions": "",
            "rules": [],
            "rigidity": "guided",
            "tools": [],
        }
        assert {k: draft["definition"][k] for k in defaults} == defaults
        assert draft["created_by"] == "user-author"

    def test_a_member_whose_latest_version_is_published_has_no_draft(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        publish(client, h, member["id"])
        check_problem(client.get(f"/v1/members/{member['id']}/draft", headers=h), 404, "NotFound")


class TestReplaceDraft:
    def test_replacing_an_open_draft_changes_it_in_place(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        changed = {**DEFINITION, "objective": "A better objective.", "rigidity": "strict"}
        r = client.put(f"/v1/members/{member['id']}/draft", json=changed, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["number"] == 1
        assert r.json()["definition"]["objective"] == "A better objective."
        assert r.json()["definition"]["rigidity"] == "strict"

    def test_editing_a_published_member_forks_a_new_draft_and_keeps_the_published_one(
        self, client, tenant
    ):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        v1 = publish(client, h, member["id"])
        changed = {**DEFINITION, "objective": "Version two."}
        r = client.put(f"/v1/members/{member['id']}/draft", json=changed, headers=h)
        assert (r.json()["number"], r.json()["status"]) == (2, "draft")
        assert client.get(f"/v1/members/{member['id']}/versions/1", headers=h).json() == v1
        handle = client.get(f"/v1/members/{member['id']}", headers=h).json()
        assert (handle["active_version_number"], handle["draft_version_number"]) == (1, 2)
        assert handle["status"] == "published"

    def test_a_draft_with_duplicate_tool_names_is_a_conflict(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        r = client.put(f"/v1/members/{member['id']}/draft", json=DUPLICATE_TOOLS, headers=h)
        body = check_problem(r, 409, "Conflict")
        assert body["error"]["details"]["pointer"] == "/tools/1/name"

    def test_the_draft_of_an_unknown_member_is_not_found(self, client, tenant):
        r = client.put(
            f"/v1/members/{missing_id('mem')}/draft",
            json=DEFINITION,
            headers=tenant.headers(Role.AUTHOR),
        )
        check_problem(r, 404, "NotFound")


class TestPublish:
    def test_publishing_compiles_freezes_activates_and_gives_an_identity(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        r = client.post(f"/v1/members/{member['id']}/publish", headers=h)
        assert r.status_code == 200, r.text
        version = r.json()
        assert version["status"] == "published"
        assert version["published_by"] == "user-author"
        assert version["artifact_hash"].startswith("sha256:")
        assert [t["checkpoint"] for t in version["program"]["tools"]] == [False, True]
        handle = client.get(f"/v1/members/{member['id']}", headers=h).json()
        assert handle["identity"] == f"member:{member['id']}"
        assert handle["active_version_id"] == version["id"]
        assert handle["draft_version_number"] is None

    def test_a_strict_member_gates_external_reads_too(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        strict = {**DEFINITION, "rigidity": "strict"}
        member = create_member(client, h, create_crew(client, h)["id"], definition=strict)
        assert publish(client, h, member["id"])["program"]["checkpoints"] == [
            "read_queue",
            "send_email",
        ]

    def test_the_identity_is_kept_across_later_publishes(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        publish(client, h, member["id"])
        client.put(f"/v1/members/{member['id']}/draft", json=DEFINITION, headers=h)
        v2 = publish(client, h, member["id"])
        handle = client.get(f"/v1/members/{member['id']}", headers=h).json()
        assert handle["identity"] == f"member:{member['id']}"
        assert handle["active_version_number"] == v2["number"] == 2

    def test_publishing_without_a_draft_is_a_conflict(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        publish(client, h, member["id"])
        body = check_problem(
            client.post(f"/v1/members/{member['id']}/publish", headers=h), 409, "Conflict"
        )
        assert body["type"] == "/problems/no-draft"

    def test_publishing_an_unknown_member_is_not_found(self, client, tenant):
        r = client.post(
            f"/v1/members/{missing_id('mem')}/publish", headers=tenant.headers(Role.AUTHOR)
        )
        check_problem(r, 404, "NotFound")


class TestPublishAudit:
    def test_publishing_writes_an_audit_entry_with_the_hash_and_the_actor(
        self, client, tenant, database
    ):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        version = publish(client, h, member["id"])
        with database() as tx:
            entries = tx.audit.entries(tenant.workspace_id, member["id"])
        published = [e for e in entries if e.action == "member.published"]
        assert len(published) == 1
        entry = published[0]
        assert entry.actor_subject == "user-author"
        assert entry.actor_kind == "user"
        assert entry.subject_type == "member"
        assert entry.data == {
            "version": 1,
            "version_id": version["id"],
            "artifact_hash": version["artifact_hash"],
        }

    def test_a_refused_publish_writes_no_audit_entry(self, client, tenant, database):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        publish(client, h, member["id"])
        client.post(f"/v1/members/{member['id']}/publish", headers=h)
        with database() as tx:
            entries = tx.audit.entries(tenant.workspace_id, member["id"])
        assert [e.action for e in entries].count("member.published") == 1


class TestListVersions:
    def _member_with_versions(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        publish(client, h, member["id"])
        changed = copy.deepcopy(DEFINITION)
        changed["objective"] = "Second."
        client.put(f"/v1/members/{member['id']}/draft", json=changed, headers=h)
        return member

    def test_versions_are_listed_by_number_with_an_optional_status_filter(self, client, tenant):
        member = self._member_with_versions(client, tenant)
        h = tenant.headers(Role.VIEWER)
        r = client.get(f"/v1/members/{member['id']}/versions", headers=h)
        assert r.status_code == 200
        assert [(v["number"], v["status"]) for v in r.json()["items"]] == [
            (1, "published"),
            (2, "draft"),
        ]
        drafts = client.get(f"/v1/members/{member['id']}/versions?status=draft", headers=h)
        assert [v["number"] for v in drafts.json()["items"]] == [2]

    def test_an_unknown_status_filter_is_a_validation_error(self, client, tenant):
        member = self._member_with_versions(client, tenant)
        r = client.get(
            f"/v1/members/{member['id']}/versions?status=archived", headers=tenant.headers()
        )
        body = check_problem(r, 400, "ValidationError")
        assert errors_of(body)[0]["name"] == "status"

    def test_the_versions_of_an_unknown_member_are_not_found(self, client, tenant):
        r = client.get(f"/v1/members/{missing_id('mem')}/versions", headers=tenant.headers())
        check_problem(r, 404, "NotFound")


class TestGetVersion:
    def test_a_published_version_carries_its_program_and_a_draft_does_not(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        publish(client, h, member["id"])
        client.put(f"/v1/members/{member['id']}/draft", json=DEFINITION, headers=h)
        v1 = client.get(f"/v1/members/{member['id']}/versions/1", headers=h)
        v2 = client.get(f"/v1/members/{member['id']}/versions/2", headers=h)
        assert v1.status_code == v2.status_code == 200
        assert v1.json()["program"]["format"] == "scaicrew.program/1"
        assert v2.json()["program"] is None
        assert v2.json()["artifact_hash"] is None

    def test_a_version_number_that_does_not_exist_is_not_found(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        check_problem(
            client.get(f"/v1/members/{member['id']}/versions/2", headers=h), 404, "NotFound"
        )

    def test_version_zero_is_a_validation_error(self, client, tenant):
        r = client.get(f"/v1/members/{missing_id('mem')}/versions/0", headers=tenant.headers())
        body = check_problem(r, 400, "ValidationError")
        assert errors_of(body)[0] == {**errors_of(body)[0], "location": "path", "name": "number"}
