"""The template catalog through the API: search, read, install (atomic), deferred operations."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from domain.authoring import templates
from domain.kernel import Role
from tests.api.helpers import create_crew, create_member, errors_of, missing_id, publish, unique
from tests.support.openapi_check import check_problem
from tests.support.runs import run_to_end

CATALOG = templates.catalog()
TRIAGE = "inbox-triage"


def dummy(ref: str) -> dict[str, str]:
    template = next(t for t in CATALOG if t.ref == ref)
    return {p.name: f"value-of-{p.name}" for p in template.parameters}


def install(
    client: httpx.Client, headers: dict[str, str], ref: str, crew_id: str, **body: Any
) -> httpx.Response:
    payload = {"crew_id": crew_id, "name": body.pop("name", unique("Installed"))} | body
    return client.post(f"/v1/templates/{ref}/install", json=payload, headers=headers)


def members_of(client: httpx.Client, headers: dict[str, str], crew_id: str) -> list[Any]:
    r = client.get(f"/v1/members?crew_id={crew_id}", headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


class TestCatalog:
    def test_list_is_ordered_by_ref_and_has_at_least_eight(self, client, tenant):
        r = client.get("/v1/templates", headers=tenant.headers(Role.VIEWER))
        assert r.status_code == 200, r.text
        refs = [t["ref"] for t in r.json()["items"]]
        assert refs == sorted(refs) == [t.ref for t in CATALOG] and len(refs) >= 8
        assert r.json()["next_cursor"] is None

    def test_pagination_walks_every_template_once(self, client, tenant):
        h, seen, cursor = tenant.headers(Role.VIEWER), [], None
        while True:
            url = "/v1/templates?limit=3" + (f"&cursor={cursor}" if cursor else "")
            body = client.get(url, headers=h).json()
            assert len(body["items"]) <= 3
            seen += [t["ref"] for t in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == [t.ref for t in CATALOG]

    def test_search_by_text(self, client, tenant):
        r = client.get("/v1/templates?q=Incident", headers=tenant.headers())
        assert [t["ref"] for t in r.json()["items"]] == ["incident-summariser"]
        r = client.get("/v1/templates?q=zzz-nothing", headers=tenant.headers())
        assert r.json()["items"] == []

    def test_filter_by_tag_and_combine_with_text(self, client, tenant):
        tag = CATALOG[0].tags[0]
        items = client.get(f"/v1/templates?tag={tag}", headers=tenant.headers()).json()["items"]
        assert items and all(tag in t["tags"] for t in items)
        assert {t["ref"] for t in items} == {t.ref for t in CATALOG if tag in t.tags}
        both = client.get(f"/v1/templates?tag={tag}&q={CATALOG[0].ref}", headers=tenant.headers())
        assert [t["ref"] for t in both.json()["items"]] == [CATALOG[0].ref]

    @pytest.mark.parametrize("query", ["tag=Not%20A%20Tag", "q=", "limit=0", "bogus=1"])
    def test_bad_queries_are_validation_errors(self, client, tenant, query):
        check_problem(
            client.get(f"/v1/templates?{query}", headers=tenant.headers()), 400, "ValidationError"
        )

    def test_get_shows_definition_parameters_and_approval_preview(self, client, tenant):
        r = client.get(f"/v1/templates/{TRIAGE}", headers=tenant.headers(Role.VIEWER))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ref"] == TRIAGE and body["definition"]["objective"]
        assert "${mailbox}" in body["definition"]["objective"]
        assert [p["name"] for p in body["parameters"]] == ["mailbox", "urgent_words"]
        assert [p["tool"] for p in body["approval_preview"]] == ["http_get", "notes_write"]

    def test_an_unknown_ref_is_not_found(self, client, tenant):
        check_problem(
            client.get("/v1/templates/no-such", headers=tenant.headers()), 404, "NotFound"
        )

    def test_no_credential_is_unauthorized(self, client):
        check_problem(client.get("/v1/templates"), 401, "Unauthorized")


class TestInstall:
    @pytest.mark.parametrize("ref", [t.ref for t in CATALOG])
    def test_every_template_installs_as_a_member_draft(self, client, tenant, ref):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        r = install(client, h, ref, crew["id"], parameters=dummy(ref))
        assert r.status_code == 201, r.text
        member = r.json()
        assert r.headers["location"] == f"/v1/members/{member['id']}"
        assert member["crew_id"] == crew["id"]
        assert (member["draft_version_number"], member["active_version_id"]) == (1, None)
        draft = client.get(f"/v1/members/{member['id']}/draft", headers=h).json()["definition"]
        assert "${" not in str(draft)

    def test_installed_member_can_be_published_and_run(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        r = install(
            client,
            h,
            "meeting-notes",
            crew["id"],
            description="Ours.",
            parameters=dummy("meeting-notes"),
        )
        assert r.status_code == 201, r.text
        member = r.json()
        assert member["description"] == "Ours."
        draft = client.get(f"/v1/members/{member['id']}/draft", headers=h).json()["definition"]
        assert [t["effect_class"] for t in draft["tools"]] == ["internal"]  # runs unattended
        publish(client, h, member["id"])
        run = run_to_end(client, h, member["id"], {})
        assert run["status"] == "succeeded", run["error"]
        assert run["output"]["tool_calls"] == 1

    def test_parameters_are_filled_and_defaults_used(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        r = install(client, h, TRIAGE, crew["id"], parameters={"mailbox": "support@acme"})
        assert r.status_code == 201, r.text
        draft = client.get(f"/v1/members/{r.json()['id']}/draft", headers=h).json()["definition"]
        assert "support@acme" in draft["objective"]
        assert "outage, refund, legal" in draft["instructions"]
        assert r.json()["description"] == CATALOG[[t.ref for t in CATALOG].index(TRIAGE)].summary

    @pytest.mark.parametrize(
        ("parameters", "pointer"),
        [
            ({}, "/parameters/mailbox"),
            ({"mailbox": ""}, "/parameters/mailbox"),
            ({"mailbox": "x", "mailboxes": "y"}, "/parameters/mailboxes"),
        ],
        ids=["missing", "empty", "unknown"],
    )
    def test_parameters_that_do_not_fit_conflict_and_create_nothing(
        self, client, tenant, parameters, pointer
    ):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        name = unique("Nope")
        r = install(client, h, TRIAGE, crew["id"], name=name, parameters=parameters)
        body = check_problem(r, 409, "Conflict")
        assert body["type"].endswith("/problems/template-parameters")
        assert body["error"]["details"]["pointer"] == pointer
        assert members_of(client, h, crew["id"]) == []
        # Nothing was reserved either: the same name installs fine afterwards.
        ok = install(client, h, TRIAGE, crew["id"], name=name, parameters={"mailbox": "x"})
        assert ok.status_code == 201, ok.text

    def test_an_oversized_parameter_value_is_a_validation_error(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        r = install(client, h, TRIAGE, crew["id"], parameters={"mailbox": "x" * 501})
        body = check_problem(r, 400, "ValidationError")
        assert errors_of(body)[0]["pointer"] == "/parameters/mailbox"
        assert members_of(client, h, crew["id"]) == []

    def test_an_unknown_crew_is_not_found_with_its_pointer(self, client, tenant):
        r = install(client, tenant.headers(), TRIAGE, missing_id("crw"), parameters=dummy(TRIAGE))
        body = check_problem(r, 404, "NotFound")
        assert body["error"]["details"]["pointer"] == "/crew_id"

    def test_another_workspaces_crew_is_not_found(self, client, make_tenant):
        a, b = make_tenant(), make_tenant()
        crew = create_crew(client, a.headers())
        r = install(client, b.headers(), TRIAGE, crew["id"], parameters=dummy(TRIAGE))
        check_problem(r, 404, "NotFound")
        assert members_of(client, a.headers(), crew["id"]) == []

    def test_an_unknown_template_is_not_found(self, client, tenant):
        crew = create_crew(client, tenant.headers())
        r = install(client, tenant.headers(), "no-such", crew["id"])
        check_problem(r, 404, "NotFound")

    def test_a_duplicate_name_conflicts_and_creates_nothing(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        taken = create_member(client, h, crew["id"])
        r = install(client, h, TRIAGE, crew["id"], name=taken["name"], parameters=dummy(TRIAGE))
        check_problem(r, 409, "Conflict")
        assert [m["id"] for m in members_of(client, h, crew["id"])] == [taken["id"]]

    @pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
    def test_below_author_is_forbidden(self, client, tenant, role):
        crew = create_crew(client, tenant.headers())
        r = install(client, tenant.headers(role), TRIAGE, crew["id"], parameters=dummy(TRIAGE))
        check_problem(r, 403, "Forbidden")
        assert members_of(client, tenant.headers(), crew["id"]) == []

    def test_unknown_body_fields_are_validation_errors(self, client, tenant):
        crew = create_crew(client, tenant.headers())
        r = install(client, tenant.headers(), TRIAGE, crew["id"], workspace_id="wsp_x")
        check_problem(r, 400, "ValidationError")


class TestDeferredOperations:
    def test_upgrade_of_an_existing_template_is_not_implemented(self, client, tenant):
        r = client.post(f"/v1/templates/{TRIAGE}/upgrade", headers=tenant.headers(Role.AUTHOR))
        body = check_problem(r, 501, "NotImplemented")
        assert "upgrade" in body["error"]["message"].lower()

    def test_upgrade_of_an_unknown_template_is_not_found(self, client, tenant):
        r = client.post("/v1/templates/no-such/upgrade", headers=tenant.headers(Role.AUTHOR))
        check_problem(r, 404, "NotFound")

    def test_upgrade_needs_author(self, client, tenant):
        r = client.post(f"/v1/templates/{TRIAGE}/upgrade", headers=tenant.headers(Role.VIEWER))
        check_problem(r, 403, "Forbidden")

    def test_export_of_an_existing_member_is_not_implemented(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        r = client.post(f"/v1/members/{member['id']}/scaiflow-export", headers=h)
        body = check_problem(r, 501, "NotImplemented")
        assert "scaiflow" in body["error"]["message"].lower()

    def test_export_of_an_unknown_member_is_not_found(self, client, tenant):
        r = client.post(
            f"/v1/members/{missing_id('mem')}/scaiflow-export", headers=tenant.headers()
        )
        check_problem(r, 404, "NotFound")

    def test_export_needs_author(self, client, tenant):
        member = create_member(
            client, tenant.headers(), create_crew(client, tenant.headers())["id"]
        )
        r = client.post(
            f"/v1/members/{member['id']}/scaiflow-export", headers=tenant.headers(Role.VIEWER)
        )
        check_problem(r, 403, "Forbidden")
