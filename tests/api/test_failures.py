"""What a client sees when the server fails: the documented 500 and 503 problems, and nothing
of the failure itself (no exception text, no stack, no internals)."""

from __future__ import annotations

import logging

from domain.kernel import Role
from scaicrew.app import create_app
from tests.support.openapi_check import check_problem, validate

SECRET_TEXT = "boom: password=hunter2 at /srv/scaicrew/domain/members/use_cases.py"


class _Unexpected(RuntimeError):
    pass


def _explode(*_args: object, **_kwargs: object) -> None:
    raise _Unexpected(SECRET_TEXT)


class TestUnexpectedException:
    def test_a_handler_that_raises_answers_the_documented_500_and_leaks_nothing(
        self, client, tenant, monkeypatch, caplog
    ):
        # Forced inside the handler: its one domain call raises something nobody expects.
        monkeypatch.setattr("domain.members.Members.list_crews", _explode)
        with caplog.at_level(logging.ERROR, logger="scaicrew.errors"):
            r = client.get("/v1/crews", headers=tenant.headers(Role.VIEWER))
        body = check_problem(r, 500, "InternalError")  # and the client fixture validated it
        assert body["type"] == "/problems/internal-error"
        assert body["detail"] == "The server failed to handle this request."
        assert body["instance"] == "/v1/crews"
        assert body["error"]["details"] == {}
        for leaked in ("boom", "hunter2", "/srv/", "_Unexpected", "RuntimeError", "Traceback"):
            assert leaked not in r.text
        # The operator still gets everything in the log.
        logged = [r.exc_info[0] for r in caplog.records if r.exc_info]
        assert _Unexpected in logged

    def test_an_async_handler_that_raises_answers_the_same_500(self, client, tenant, monkeypatch):
        monkeypatch.setattr("domain.stream.Stream.open_stream", _explode)
        r = client.get("/v1/stream", headers=tenant.headers(Role.VIEWER))
        check_problem(r, 500, "InternalError")
        assert "hunter2" not in r.text


class TestDatabaseUnavailable:
    def test_an_unreachable_database_answers_503_with_retry_after(self, settings, tenant):
        unreachable = settings.with_changes(
            database_url="postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2",
            worker_threads=0,
        )
        app = create_app(unreachable)
        c = app.test_client()  # no lifespan: nothing but the request touches the database
        r = c.get("/v1/crews", headers=tenant.headers(Role.VIEWER))
        validate(r)
        body = check_problem(r, 503, "ServiceUnavailable")
        assert int(r.headers["retry-after"]) >= 1
        assert "127.0.0.1" not in r.text and "psycopg" not in r.text.lower()
        assert body["instance"] == "/v1/crews"
