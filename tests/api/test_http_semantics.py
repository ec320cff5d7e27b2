"""HTTP as a client library speaks it: media types, chunked bodies, path parameters, redirects,
cursors, Location, Accept. Each answer is documented by the contract (the ``client`` fixture
validates every response against it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from domain.kernel import Role
from tests.api.helpers import DEFINITION, create_crew, create_member, errors_of, spec_document
from tests.support.openapi_check import check_problem

CREW = b'{"name": "Media crew %s"}'


def _chunks(data: bytes, size: int = 7) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


class TestContentType:
    @pytest.mark.parametrize(
        "content_type",
        [
            "Application/JSON",
            "APPLICATION/JSON; CHARSET=UTF-8",
            "application/json ; charset=utf-8",
            'application/json;charset="utf-8"',
            "application/json; charset=UTF8; profile=x",
        ],
    )
    def test_a_json_media_type_is_read_whatever_its_case_and_parameters(
        self, client, tenant, content_type
    ):
        body = CREW % content_type.replace('"', "").encode()
        r = client.post(
            "/v1/crews",
            content=body,
            headers={**tenant.headers(Role.AUTHOR), "Content-Type": content_type},
        )
        assert r.status_code == 201, r.text

    def test_an_unauthenticated_body_operation_with_an_odd_case_type_is_no_server_error(
        self, client
    ):
        r = client.post(
            "/v1/auth/token",
            content=b'{"session_code": "'
            + b"a" * 40
            + b'", "login_verifier": "'
            + b"v" * 43
            + b'"}',
            headers={"Content-Type": "Application/JSON"},
        )
        assert r.status_code < 500, r.text

    @pytest.mark.parametrize(
        ("content_type", "words"),
        [
            ("text/plain", "accepts application/json bodies, not text/plain"),
            ("application/json; charset=latin-1", "UTF-8"),
            ("json", "not a media type"),
            ("application/json; charset", "not a media type"),
        ],
    )
    def test_another_media_type_is_415_in_plain_words(self, client, tenant, content_type, words):
        r = client.post(
            "/v1/crews",
            content=b'{"name": "x"}',
            headers={**tenant.headers(Role.AUTHOR), "Content-Type": content_type},
        )
        body = check_problem(r, 415, "UnsupportedMediaType")
        assert words in body["detail"]
        assert "[" not in body["detail"] and "{" not in body["detail"]


class TestChunkedBodies:
    def test_a_chunked_body_is_read(self, client, tenant):
        r = client.post(
            "/v1/crews",
            content=_chunks(b'{"name": "Chunked crew"}'),
            headers={**tenant.headers(Role.AUTHOR), "Content-Type": "application/json"},
        )
        assert r.request.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in r.request.headers
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "Chunked crew"

    def test_a_chunked_body_over_the_limit_is_413(self, client, tenant, settings):
        big = b'{"name": "x", "description": "' + b"d" * settings.max_body_bytes + b'"}'
        r = client.post(
            "/v1/crews",
            content=_chunks(big, 4096),
            headers={**tenant.headers(Role.AUTHOR), "Content-Type": "application/json"},
        )
        check_problem(r, 413, "PayloadTooLarge")

    def test_a_declared_length_over_the_limit_is_413(self, client, tenant, settings):
        r = client.post(
            "/v1/crews",
            content=b"x" * (settings.max_body_bytes + 1),
            headers={**tenant.headers(Role.AUTHOR), "Content-Type": "application/json"},
        )
        check_problem(r, 413, "PayloadTooLarge")


class TestPathParameters:
    def test_a_version_number_that_is_not_a_number_is_a_400_naming_it(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        r = client.get(f"/v1/members/{member['id']}/versions/abc", headers=h)
        body = check_problem(r, 400, "ValidationError")
        assert [e["name"] for e in errors_of(body)] == ["number"]
        assert errors_of(body)[0]["location"] == "path"

    def test_a_malformed_id_is_a_400_naming_it(self, client, tenant):
        r = client.get("/v1/crews/not-a-crew", headers=tenant.headers())
        body = check_problem(r, 400, "ValidationError")
        assert [e["name"] for e in errors_of(body)] == ["crew_id"]


class TestNoUndocumentedRedirects:
    @pytest.mark.parametrize("path", ["/v1/crews/", "/v1/workspace/", "/health/"])
    def test_a_trailing_slash_is_not_found_not_a_redirect(self, app, tenant, path):
        with app.test_client() as c:
            r = c.get(path, headers=tenant.headers(), follow_redirects=False)
        check_problem(r, 404, "NotFound")
        assert "location" not in r.headers


class TestCursors:
    def _two_pages(self, client: Any, headers: dict[str, str], url: str) -> str:
        r = client.get(f"{url}?limit=1", headers=headers)
        assert r.status_code == 200, r.text
        cursor = r.json()["next_cursor"]
        assert cursor
        return str(cursor)

    def test_a_cursor_from_a_page_reads_the_next_page(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        first, second = create_crew(client, h), create_crew(client, h)
        cursor = self._two_pages(client, h, "/v1/crews")
        r = client.get(f"/v1/crews?limit=1&cursor={cursor}", headers=h)
        assert [c["id"] for c in r.json()["items"]] == [second["id"]] != [first["id"]]

    @pytest.mark.parametrize("forged", ["abc", "crw_0000000000000000000000000", "AQ" * 20])
    def test_a_made_up_cursor_is_404_invalid_cursor(self, client, tenant, forged):
        r = client.get(f"/v1/crews?cursor={forged}", headers=tenant.headers())
        body = check_problem(r, 404, "InvalidCursor")
        assert body["type"] == "/problems/invalid-cursor"
        assert errors_of(body)[0]["name"] == "cursor"

    def test_an_altered_cursor_is_404(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        create_crew(client, h), create_crew(client, h)
        cursor = self._two_pages(client, h, "/v1/crews")
        altered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
        check_problem(client.get(f"/v1/crews?cursor={altered}", headers=h), 404, "InvalidCursor")

    def test_a_cursor_of_another_list_is_404(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        create_crew(client, h)
        create_member(client, h, crew["id"]), create_member(client, h, crew["id"])
        cursor = self._two_pages(client, h, "/v1/crews")
        check_problem(client.get(f"/v1/members?cursor={cursor}", headers=h), 404, "InvalidCursor")
        members_cursor = self._two_pages(client, h, f"/v1/crews/{crew['id']}/members")
        other = create_crew(client, h)
        r = client.get(f"/v1/crews/{other['id']}/members?cursor={members_cursor}", headers=h)
        check_problem(r, 404, "InvalidCursor")

    def test_a_cursor_of_another_workspace_is_404(self, client, make_tenant):
        a, b = make_tenant(), make_tenant()
        for _ in range(2):
            create_crew(client, a.headers(Role.AUTHOR))
            create_crew(client, b.headers(Role.AUTHOR))
        cursor = self._two_pages(client, a.headers(), "/v1/crews")
        r = client.get(f"/v1/crews?cursor={cursor}", headers=b.headers())
        check_problem(r, 404, "InvalidCursor")


class TestLocation:
    def test_every_201_of_the_contract_declares_a_required_location(self):
        for path, item in spec_document()["paths"].items():
            for method, op in item.items():
                if isinstance(op, dict) and "201" in op.get("responses", {}):
                    headers = op["responses"]["201"].get("headers", {})
                    assert "Location" in headers, f"{method.upper()} {path}"

    def test_a_new_workspace_and_a_stream_ticket_come_with_a_location(self, client, tenant):
        r = client.post("/v1/workspaces", json={"name": "Another"}, headers=tenant.headers())
        assert r.status_code == 201, r.text
        assert r.headers["location"] == "/v1/workspace"
        r = client.post("/v1/stream/tickets", headers=tenant.headers(Role.VIEWER))
        assert r.status_code == 201, r.text
        assert r.headers["location"] == r.json()["stream_url"]


class TestAccept:
    @pytest.mark.parametrize(
        "accept", ["application/xml", "text/html, application/xml;q=0.9", "application/json;q=0"]
    )
    def test_an_accept_the_operation_cannot_serve_is_406(self, client, tenant, accept):
        r = client.get("/v1/crews", headers={**tenant.headers(), "Accept": accept})
        body = check_problem(r, 406, "NotAcceptable")
        assert "application/json" in body["detail"]

    @pytest.mark.parametrize(
        "accept",
        ["application/json", "*/*", "application/*", "text/html, */*;q=0.1", "Application/JSON"],
    )
    def test_an_accept_that_admits_json_is_served(self, client, tenant, accept):
        r = client.get("/v1/crews", headers={**tenant.headers(), "Accept": accept})
        assert r.status_code == 200, r.text

    def test_the_stream_refuses_an_accept_without_event_stream(self, client, tenant):
        r = client.get("/v1/stream", headers={**tenant.headers(), "Accept": "application/json"})
        check_problem(r, 406, "NotAcceptable")

    def test_a_missing_credential_is_still_401_whatever_the_accept(self, client):
        r = client.get("/v1/crews", headers={"Accept": "application/xml"})
        check_problem(r, 401, "Unauthorized")


class TestPlainWords:
    def test_validation_messages_hold_no_python_reprs(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        r = client.post(
            "/v1/members",
            json={"crew_id": 5, "name": "", "definition": {**DEFINITION, "rigidity": "loose"}},
            headers=h,
        )
        body = check_problem(r, 400, "ValidationError")
        for text in [body["detail"], *(e["message"] for e in errors_of(body))]:
            for repr_mark in ("['", "{'", "'' ", "u'", "is not of type 'integer'"):
                assert repr_mark not in text, text
