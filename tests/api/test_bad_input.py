"""Malformed requests: each is a 4xx problem+json that names the problem, never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest

from domain.kernel import Role
from tests.api.helpers import DEFINITION, create_crew, create_member, errors_of, missing_id
from tests.support.openapi_check import check_problem

JSON_HEADERS = {"Content-Type": "application/json"}


def post_raw(client: Any, tenant: Any, url: str, content: bytes, **headers: str) -> Any:
    return client.post(
        url,
        content=content,
        headers={**tenant.headers(Role.AUTHOR), **JSON_HEADERS, **headers},
    )


def the_error(body: dict[str, Any]) -> dict[str, Any]:
    errors = errors_of(body)
    assert len(errors) >= 1
    return errors[0]


class TestWrongTypes:
    def test_a_number_where_a_string_belongs_names_the_field(self, client, tenant):
        r = client.post("/v1/crews", json={"name": 5}, headers=tenant.headers(Role.AUTHOR))
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["location"], error["pointer"], error["reason"]) == ("body", "/name", "type")

    def test_a_body_that_is_not_an_object_is_a_validation_error(self, client, tenant):
        r = client.post("/v1/crews", json=["Support"], headers=tenant.headers(Role.AUTHOR))
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["pointer"], error["reason"]) == ("", "type")

    def test_an_unknown_enum_value_deep_in_the_body_is_pointed_at(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        bad = {**DEFINITION, "tools": [{"name": "x", "effect_class": "teleport"}]}
        r = client.put(f"/v1/members/{member['id']}/draft", json=bad, headers=h)
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["pointer"], error["reason"]) == ("/tools/0/effect_class", "enum")

    def test_every_problem_of_the_body_is_listed(self, client, tenant):
        r = client.post(
            "/v1/members",
            json={"crew_id": 7, "name": "", "definition": {"objective": ""}},
            headers=tenant.headers(Role.AUTHOR),
        )
        body = check_problem(r, 400, "ValidationError")
        pointers = {e["pointer"] for e in errors_of(body)}
        assert {"/crew_id", "/name", "/definition/objective"} <= pointers


class TestUnknownFields:
    def test_an_unknown_top_level_field_is_named_in_the_pointer(self, client, tenant):
        r = client.post(
            "/v1/crews",
            json={"name": "Support", "colour": "red"},
            headers=tenant.headers(Role.AUTHOR),
        )
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["pointer"], error["reason"]) == ("/colour", "additionalProperties")
        assert "colour" in error["message"]

    def test_an_unknown_nested_field_is_named_with_its_full_pointer(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        definition = {
            **DEFINITION,
            "tools": [{"name": "read_queue", "effect_class": "internal", "scope": "all"}],
        }
        r = client.post(
            "/v1/members",
            json={"crew_id": crew["id"], "name": "x", "definition": definition},
            headers=h,
        )
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert error["pointer"] == "/definition/tools/0/scope"

    def test_a_workspace_id_in_the_body_is_refused_not_obeyed(self, client, tenant):
        r = client.post(
            "/v1/crews",
            json={"name": "x", "workspace_id": "wsp_elsewhere"},
            headers=tenant.headers(Role.AUTHOR),
        )
        assert the_error(check_problem(r, 400, "ValidationError"))["pointer"] == "/workspace_id"

    def test_an_unknown_query_parameter_is_named(self, client, tenant):
        r = client.get("/v1/crews?workspace_id=wsp_x", headers=tenant.headers())
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["location"], error["name"], error["reason"]) == (
            "query",
            "workspace_id",
            "unknown",
        )


class TestOversizedValues:
    def test_a_name_over_100_characters_is_refused(self, client, tenant):
        r = client.post("/v1/crews", json={"name": "n" * 101}, headers=tenant.headers())
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["pointer"], error["reason"]) == ("/name", "maxLength")

    def test_an_oversized_value_is_not_echoed_in_full(self, client, tenant):
        r = client.post("/v1/crews", json={"name": "n" * 5000}, headers=tenant.headers())
        body = check_problem(r, 400, "ValidationError")
        assert len(the_error(body)["message"]) <= 300
        assert len(body["detail"]) <= 300

    def test_a_name_of_exactly_100_characters_is_accepted(self, client, tenant):
        r = client.post("/v1/crews", json={"name": "é" * 100}, headers=tenant.headers())
        assert r.status_code == 201

    def test_a_huge_limit_is_a_validation_error_not_an_overflow(self, client, tenant):
        r = client.get("/v1/crews?limit=99999999999999999999", headers=tenant.headers())
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["location"], error["name"], error["reason"]) == ("query", "limit", "maximum")

    def test_a_huge_version_number_in_the_path_is_a_validation_error(self, client, tenant):
        r = client.get(
            f"/v1/members/{missing_id('mem')}/versions/99999999999999999999",
            headers=tenant.headers(),
        )
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["location"], error["name"], error["reason"]) == ("path", "number", "maximum")

    def test_the_largest_allowed_version_number_is_a_plain_not_found(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        r = client.get(f"/v1/members/{member['id']}/versions/2147483647", headers=h)
        check_problem(r, 404, "NotFound")

    def test_a_path_integer_beyond_pythons_digit_limit_is_a_validation_error(self, client, tenant):
        r = client.get(
            f"/v1/members/{missing_id('mem')}/versions/{'9' * 5000}", headers=tenant.headers()
        )
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["location"], error["name"]) == ("path", "number")
        assert len(error["message"]) <= 300

    def test_a_query_integer_beyond_pythons_digit_limit_is_a_validation_error(self, client, tenant):
        r = client.get(f"/v1/crews?limit={'9' * 5000}", headers=tenant.headers())
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["location"], error["name"]) == ("query", "limit")


def _condition_body(target: str, literal: str) -> bytes:
    condition = f'{{"output_field": "n", "equals": {literal}}}'
    return (
        f'{{"handoffs": [{{"target_member_id": "{target}", "condition": {condition}}}]}}'.encode()
    )


class TestNumbersInBodies:
    @pytest.fixture
    def pair(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        return [create_member(client, h, crew["id"])["id"] for _ in range(2)]

    def test_a_large_integer_is_stored_and_read_back_exactly(self, client, tenant, pair):
        a, b = pair
        h = {**tenant.headers(Role.AUTHOR), **JSON_HEADERS}
        literal = "99999999999999999999999999999999"
        r = client.put(f"/v1/members/{a}/handoffs", content=_condition_body(b, literal), headers=h)
        assert r.status_code == 200, r.text
        read = client.get(f"/v1/members/{a}/handoffs", headers=h)
        assert read.json()["handoffs"][0]["condition"]["equals"] == int(literal)

    @pytest.mark.parametrize(
        "literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 5000]
    )
    def test_a_number_json_cannot_carry_is_a_validation_error(self, client, tenant, pair, literal):
        a, b = pair
        h = {**tenant.headers(Role.AUTHOR), **JSON_HEADERS}
        r = client.put(f"/v1/members/{a}/handoffs", content=_condition_body(b, literal), headers=h)
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["location"], error["reason"]) == ("body", "number")
        unchanged = client.get(f"/v1/members/{a}/handoffs", headers=h).json()
        assert unchanged["handoffs"] == []


class TestUndecodableBodies:
    def test_bytes_that_are_not_utf8_are_a_validation_error(self, client, tenant):
        r = post_raw(client, tenant, "/v1/crews", b'{"name": "caf\xe9"}')
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["location"], error["reason"]) == ("body", "encoding")
        assert "UTF-8" in error["message"]

    def test_malformed_json_is_a_validation_error_with_the_position(self, client, tenant):
        r = post_raw(client, tenant, "/v1/crews", b'{"name": "Support",}')
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert error["reason"] == "syntax"
        assert "line 1" in error["message"]

    def test_a_nul_character_in_a_string_is_a_validation_error(self, client, tenant):
        r = post_raw(client, tenant, "/v1/crews", b'{"name": "a\\u0000b"}')
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["pointer"], error["reason"]) == ("/name", "pattern")

    def test_an_unpaired_surrogate_escape_is_a_validation_error(self, client, tenant):
        r = post_raw(client, tenant, "/v1/crews", b'{"name": "a\\ud800b"}')
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert error["reason"] == "encoding"

    def test_deeply_nested_json_is_a_validation_error(self, client, tenant):
        r = post_raw(client, tenant, "/v1/crews", b"[" * 30_000 + b"]" * 30_000)
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["location"], error["reason"]) == ("body", "syntax")

    def test_an_empty_body_where_one_is_required_is_a_validation_error(self, client, tenant):
        r = post_raw(client, tenant, "/v1/crews", b"")
        check_problem(r, 400, "ValidationError")


class TestBodyLimits:
    def test_a_body_over_the_limit_is_payload_too_large(self, client, tenant, settings):
        content = b'{"name": "' + b"x" * settings.max_body_bytes + b'"}'
        r = post_raw(client, tenant, "/v1/crews", content)
        body = check_problem(r, 413, "PayloadTooLarge")
        assert str(settings.max_body_bytes) in body["error"]["message"]

    def test_a_declared_length_over_the_limit_is_refused_before_reading(self, client, tenant):
        r = post_raw(
            client, tenant, "/v1/crews", b'{"name": "x"}', **{"Content-Length": "10000000"}
        )
        check_problem(r, 413, "PayloadTooLarge")

    @pytest.mark.parametrize("length", ["abc", "-1", "1e3", "99999999999999999999999"])
    def test_an_invalid_content_length_is_a_validation_error(self, client, tenant, length):
        r = post_raw(client, tenant, "/v1/crews", b'{"name": "x"}', **{"Content-Length": length})
        body = check_problem(r, 400, "ValidationError")
        assert "Content-Length" in body["error"]["message"]


class TestMediaTypes:
    @pytest.mark.parametrize(
        "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
    )
    def test_a_body_that_is_not_json_is_unsupported_media_type(self, client, tenant, content_type):
        r = client.post(
            "/v1/crews",
            content=b"name=Support",
            headers={**tenant.headers(Role.AUTHOR), "Content-Type": content_type},
        )
        body = check_problem(r, 415, "UnsupportedMediaType")
        assert "application/json" in body["error"]["message"]

    def test_json_with_a_charset_parameter_is_accepted(self, client, tenant):
        r = client.post(
            "/v1/crews",
            content=b'{"name": "Charset crew"}',
            headers={
                **tenant.headers(Role.AUTHOR),
                "Content-Type": "application/json; charset=utf-8",
            },
        )
        assert r.status_code == 201, r.text


class TestMalformedParameters:
    def test_a_non_numeric_limit_is_a_validation_error(self, client, tenant):
        r = client.get("/v1/members?limit=ten", headers=tenant.headers())
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["name"], error["reason"]) == ("limit", "type")

    def test_a_malformed_crew_filter_is_a_validation_error(self, client, tenant):
        r = client.get("/v1/members?crew_id=crew-1", headers=tenant.headers())
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["name"], error["reason"]) == ("crew_id", "pattern")

    def test_a_malformed_member_id_in_the_path_is_a_validation_error(self, client, tenant):
        r = client.get("/v1/members/mem_UPPERCASE000000000000000000", headers=tenant.headers())
        error = the_error(check_problem(r, 400, "ValidationError"))
        assert (error["location"], error["name"]) == ("path", "member_id")
