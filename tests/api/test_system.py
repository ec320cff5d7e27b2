"""Liveness, the served contract, interactive docs and the trace id."""

from __future__ import annotations

from scaicrew.app import SPEC_PATH
from tests.api.helpers import raw_client, spec_document
from tests.support.openapi_check import check_problem


class TestHealth:
    def test_health_answers_ok_without_credentials(self, client):
        r = client.get("/health")
        assert r.status_code == 200
        assert r.json() == {"status": "ok"}

    def test_health_refuses_other_methods_with_405_and_an_allow_header(self, app):
        with raw_client(app) as c:
            r = c.post("/health")
        check_problem(r, 405, "MethodNotAllowed")
        assert r.headers["allow"] == "GET"


class TestServedContract:
    def test_openapi_json_serves_every_path_of_openapi_yaml(self, client):
        r = client.get("/openapi.json")
        assert r.status_code == 200
        assert set(r.json()["paths"]) == set(spec_document()["paths"])

    def test_openapi_json_is_the_authored_document_with_its_refs(self, client):
        r = client.get("/openapi.json")
        assert r.headers["content-type"].startswith("application/json")
        served = r.json()
        assert served == spec_document()
        assert "Run" in served["components"]["schemas"]
        start_run = served["paths"]["/v1/members/{member_id}/runs"]["post"]
        assert start_run["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/RunCreate"
        }
        assert len(r.content) < 2 * SPEC_PATH.stat().st_size

    def test_openapi_yaml_is_the_authored_file_byte_for_byte(self, client):
        r = client.get("/openapi.yaml")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/yaml")
        assert r.content == SPEC_PATH.read_bytes()

    def test_interactive_docs_are_served(self, client):
        r = client.get("/docs/")
        assert r.status_code == 200
        assert "swagger" in r.text.lower()


class TestUnknownRoutes:
    def test_an_unknown_path_is_a_404_problem(self, app):
        with raw_client(app) as c:
            r = c.get("/v1/no-such-thing")
        check_problem(r, 404, "NotFound")

    def test_a_405_lists_every_documented_method_of_the_path(self, app, tenant):
        with raw_client(app) as c:
            r = c.delete("/v1/workspace", headers=tenant.headers())
        check_problem(r, 405, "MethodNotAllowed")
        assert r.headers["allow"] == "GET, PATCH"


class TestTraceId:
    def test_a_well_formed_incoming_request_id_is_echoed(self, client):
        r = client.get("/health", headers={"X-Request-ID": "trace-abc-12345"})
        assert r.headers["x-request-id"] == "trace-abc-12345"

    def test_a_malformed_incoming_request_id_is_replaced(self, client):
        r = client.get("/v1/workspace", headers={"X-Request-ID": "bad id\twith spaces"})
        body = check_problem(r, 401, "Unauthorized")
        assert r.headers["x-request-id"] != "bad id\twith spaces"
        assert body["error"]["trace_id"] == r.headers["x-request-id"]

    def test_every_response_gets_a_fresh_request_id(self, client):
        first = client.get("/health").headers["x-request-id"]
        second = client.get("/health").headers["x-request-id"]
        assert first != second
