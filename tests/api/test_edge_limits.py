"""Header size limit (431), DOCS_ENABLED and CORS_ORIGINS (issue 15).

The 431 is checked in-app (any ASGI server) and against a real ``scaicrew serve`` process,
which must refuse an 8 MB header without reading it whole.
"""

from __future__ import annotations

import socket

import pytest

from scaicrew.app import create_app
from tests.support.openapi_check import check_problem
from tests.support.processes import serve

ORIGIN = "https://app.example.test"


class TestHeaderLimit:
    def test_headers_over_the_limit_answer_431_problem(self, client, tenant):
        r = client.get("/v1/crews", headers={**tenant.headers(), "X-Padding": "a" * 17_000})
        body = check_problem(r, 431, "RequestHeaderFieldsTooLarge")
        assert r.headers["x-request-id"] == body["error"]["trace_id"]
        assert client.get("/v1/crews", headers=tenant.headers()).status_code == 200

    def test_a_real_server_refuses_an_8_mb_header_without_reading_it(
        self, settings, tmp_path, database_url
    ):
        process, base_url = serve(settings, tmp_path / "serve.log", DATABASE_URL=database_url)
        try:
            port = int(base_url.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET /v1/crews HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
                sent, answer = 0, b""
                try:
                    while sent < 8 * 1024 * 1024:
                        sock.sendall(b"a" * 65_536)
                        sent += 65_536
                except OSError:  # the server closed the connection: it stopped reading
                    pass
                sock.settimeout(10)
                try:
                    while chunk := sock.recv(65_536):
                        answer += chunk
                except OSError:
                    pass
            assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
            assert b"application/problem+json" in answer
            assert b"RequestHeaderFieldsTooLarge" in answer
            assert sent < 8 * 1024 * 1024, "the server read the whole 8 MB header"
        finally:
            process.stop()


def production(settings, **changes):
    return settings.with_changes(
        ENV="production", SESSION_SECRET="s" * 40, worker_threads=0, **changes
    )


class TestDocs:
    @pytest.mark.parametrize("path", ["/docs/", "/openapi.json", "/openapi.yaml"])
    def test_production_serves_no_docs_by_default(self, settings, path):
        with create_app(production(settings)).test_client() as c:
            assert c.get(path).status_code == 404

    @pytest.mark.parametrize("path", ["/docs/", "/openapi.json", "/openapi.yaml"])
    def test_docs_enabled_serves_them_in_production(self, settings, path):
        with create_app(production(settings, DOCS_ENABLED=True)).test_client() as c:
            assert c.get(path).status_code == 200

    def test_docs_can_be_turned_off_in_dev(self, settings):
        with create_app(settings.with_changes(DOCS_ENABLED=False)).test_client() as c:
            assert c.get("/openapi.json").status_code == 404
            assert c.get("/health").status_code == 200


class TestCors:
    def test_no_origin_is_allowed_by_default(self, client):
        r = client.get("/health", headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in r.headers

    def test_a_configured_origin_gets_its_preflight_and_its_answers(self, settings, tenant):
        app = create_app(settings.with_changes(CORS_ORIGINS=ORIGIN, worker_threads=0))
        with app.test_client() as c:
            r = c.options(
                "/v1/crews",
                headers={
                    "Origin": ORIGIN,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, content-type",
                },
            )
            assert r.status_code == 200, r.text
            assert r.headers["access-control-allow-origin"] == ORIGIN
            assert "POST" in r.headers["access-control-allow-methods"]
            listed = c.get("/v1/crews", headers={**tenant.headers(), "Origin": ORIGIN})
            assert listed.status_code == 200
            assert listed.headers["access-control-allow-origin"] == ORIGIN
            assert "X-Request-ID" in listed.headers["access-control-expose-headers"]

    def test_another_origins_preflight_is_refused_as_a_problem(self, settings):
        app = create_app(settings.with_changes(CORS_ORIGINS=ORIGIN, worker_threads=0))
        with app.test_client() as c:
            r = c.options(
                "/v1/crews",
                headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"},
            )
            check_problem(r, 400, "ValidationError")
            assert "access-control-allow-origin" not in r.headers
