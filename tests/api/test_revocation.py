"""Revocation within seconds (issue 15, ADR 0032): a removed member's or demoted author's
session token loses its power on the next request, tickets issued before the removal are
refused, open streams end, and a signed token naming a workspace its subject does not belong
to is refused. Real apps over the real database; a second app stands for a second process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from domain.kernel import Role
from scaicrew.app import create_app
from tests.api.helpers import validate_hook
from tests.support.openapi_check import check_problem
from tests.support.sse import StreamReader, served

CREW = {"name": "Ops"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def remove(client: httpx.Client, tenant: Any, subject: str) -> None:
    r = client.delete(f"/v1/workspace/members/{subject}", headers=tenant.headers())
    assert r.status_code == 204, r.text


class TestSessionTokens:
    def test_a_removed_members_token_stops_working_on_the_next_request(self, client, tenant):
        token = tenant.token(Role.AUTHOR)
        assert client.post("/v1/crews", json=CREW, headers=bearer(token)).status_code == 201
        remove(client, tenant, "user-author")
        body = check_problem(client.get("/v1/crews", headers=bearer(token)), 401, "Unauthorized")
        assert "not a member" in body["detail"]
        check_problem(
            client.post("/v1/crews", json=CREW, headers=bearer(token)), 401, "Unauthorized"
        )

    def test_a_demoted_authors_token_stops_writing_on_the_next_request(self, client, tenant):
        token = tenant.token(Role.AUTHOR)
        assert client.post("/v1/crews", json=CREW, headers=bearer(token)).status_code == 201
        r = client.patch(
            "/v1/workspace/members/user-author", json={"role": "viewer"}, headers=tenant.headers()
        )
        assert r.status_code == 200, r.text
        check_problem(client.post("/v1/crews", json=CREW, headers=bearer(token)), 403, "Forbidden")
        assert client.get("/v1/crews", headers=bearer(token)).status_code == 200  # still a viewer

    def test_a_promotion_does_not_raise_what_an_older_token_may_do(self, client, tenant):
        token = tenant.token(Role.VIEWER)
        r = client.patch(
            "/v1/workspace/members/user-viewer", json={"role": "admin"}, headers=tenant.headers()
        )
        assert r.status_code == 200, r.text
        check_problem(client.post("/v1/crews", json=CREW, headers=bearer(token)), 403, "Forbidden")

    def test_a_token_naming_a_workspace_its_subject_is_not_a_member_of_is_refused(
        self, client, tenant, make_tenant
    ):
        other = make_tenant("Other")
        # Signed with the server's key, for a real workspace, by a subject of another one.
        token = other.token(Role.ADMIN, subject="user-admin-of-nothing-here")
        check_problem(client.get("/v1/workspace", headers=bearer(token)), 401, "Unauthorized")
        member = other.token(Role.ADMIN)  # the same workspace, its member: accepted
        assert client.get("/v1/workspace", headers=bearer(member)).status_code == 200

    def test_another_process_sees_a_removal_within_auth_cache_seconds(
        self, settings, client, tenant
    ):
        other = create_app(settings.with_changes(auth_cache_seconds=1, worker_threads=0))
        token = tenant.token(Role.VIEWER)
        with other.test_client() as elsewhere:
            elsewhere.event_hooks["response"] = [validate_hook]
            assert elsewhere.get("/v1/crews", headers=bearer(token)).status_code == 200  # cached
            remove(client, tenant, "user-viewer")
            time.sleep(1.1)
            check_problem(elsewhere.get("/v1/crews", headers=bearer(token)), 401, "Unauthorized")


@pytest.fixture(scope="module")
def stream_url(settings: Any) -> Iterator[str]:
    app = create_app(
        settings.with_changes(auth_cache_seconds=1, stream_keepalive_seconds=0.2, worker_threads=0)
    )
    with served(app) as url:
        yield url


class TestStreams:
    def test_a_ticket_issued_before_the_removal_is_refused(self, stream_url, tenant):
        with httpx.Client(base_url=stream_url, timeout=30) as api:
            api.event_hooks["response"] = [validate_hook]
            r = api.post("/v1/stream/tickets", headers=tenant.headers(Role.VIEWER))
            assert r.status_code == 201, r.text
            remove(api, tenant, "user-viewer")
            check_problem(api.get(r.json()["stream_url"]), 401, "Unauthorized")

    def test_an_open_stream_of_a_removed_member_is_closed(self, stream_url, tenant):
        with (
            httpx.Client(base_url=stream_url, timeout=30) as api,
            StreamReader(stream_url, tenant.headers(Role.VIEWER), {}) as reader,
        ):
            assert reader.status == 200
            assert not reader.done.wait(1.5)  # open, and kept open while a member
            remove(api, tenant, "user-viewer")
            assert reader.done.wait(5), "the stream stayed open after the removal"
