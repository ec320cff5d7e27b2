"""Workspace API keys (issue 15, ADR 0033): created by admins with at most their role, shown
once, stored hashed, authenticating as ``Bearer sck_...``, revoked on the next request,
audited, never logged. Bad keys of every kind get the same 401."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from domain.kernel import Role
from domain.persistence import tables as orm
from tests.support.openapi_check import check_problem

CREW = {"name": "Nightly"}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def create(client, tenant, role: str = "operator", **extra) -> dict:
    r = client.post(
        "/v1/api-keys", json={"name": "CI", "role": role, **extra}, headers=tenant.headers()
    )
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["location"] == f"/v1/api-keys/{r.json()['id']}"
    return dict(r.json())


class TestCreating:
    def test_the_secret_is_shown_once_and_stored_only_as_a_hash(self, client, tenant, database):
        key = create(client, tenant)
        assert re.fullmatch(r"sck_[A-Za-z0-9_-]{43}", key["secret"])  # 256 bits
        assert key["role"] == "operator" and key["created_by"] == "user-admin"
        assert key["last_used_at"] is None and key["expires_at"] is None
        listed = client.get("/v1/api-keys", headers=tenant.headers()).json()["items"]
        assert [k["id"] for k in listed] == [key["id"]]
        assert "secret" not in listed[0] and key["secret"] not in str(listed)
        with database() as tx:
            stored = tx.connection.execute(select(orm.api_keys)).all()
        assert key["secret"] not in str(stored)

    @pytest.mark.parametrize("role", [Role.AUTHOR, Role.OPERATOR, Role.VIEWER])
    def test_only_admins_manage_keys(self, client, tenant, role):
        h = tenant.headers(role)
        body = {"name": "CI", "role": "viewer"}
        check_problem(client.post("/v1/api-keys", json=body, headers=h), 403, "Forbidden")
        check_problem(client.get("/v1/api-keys", headers=h), 403, "Forbidden")
        key_id = "key_" + "0" * 26
        check_problem(client.delete(f"/v1/api-keys/{key_id}", headers=h), 403, "Forbidden")

    def test_a_key_cannot_create_a_key_above_its_own_role(self, client, tenant):
        operator_key = create(client, tenant, "operator")["secret"]
        r = client.post(
            "/v1/api-keys", json={"name": "x", "role": "admin"}, headers=bearer(operator_key)
        )
        check_problem(r, 403, "Forbidden")

    def test_an_expiry_in_the_past_is_a_conflict(self, client, tenant):
        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        r = client.post(
            "/v1/api-keys",
            json={"name": "x", "role": "viewer", "expires_at": past},
            headers=tenant.headers(),
        )
        body = check_problem(r, 409, "Conflict")
        assert body["type"] == "/problems/expiry-in-the-past"

    @pytest.mark.parametrize("name", ["", "x" * 101, "nul\u0000"])
    def test_key_names_have_the_usual_limits(self, client, tenant, name):
        r = client.post(
            "/v1/api-keys", json={"name": name, "role": "viewer"}, headers=tenant.headers()
        )
        check_problem(r, 400, "ValidationError")


class TestUsing:
    def test_a_key_acts_in_its_workspace_with_its_role(self, client, tenant, database):
        key = create(client, tenant, "author")
        r = client.post("/v1/crews", json=CREW, headers=bearer(key["secret"]))
        assert r.status_code == 201, r.text
        listed = client.get("/v1/api-keys", headers=tenant.headers()).json()["items"]
        assert listed[0]["last_used_at"] is not None
        with database() as tx:
            audited = tx.audit.entries(tenant.workspace_id, r.json()["id"])
        assert [(e.actor_subject, e.actor_kind) for e in audited] == [(key["id"], "api_key")]

    def test_a_viewer_key_cannot_write(self, client, tenant):
        key = create(client, tenant, "viewer")
        assert client.get("/v1/crews", headers=bearer(key["secret"])).status_code == 200
        r = client.post("/v1/crews", json=CREW, headers=bearer(key["secret"]))
        check_problem(r, 403, "Forbidden")

    def test_revoking_takes_effect_on_the_next_request(self, client, tenant, database):
        key = create(client, tenant)
        assert client.get("/v1/crews", headers=bearer(key["secret"])).status_code == 200
        r = client.delete(f"/v1/api-keys/{key['id']}", headers=tenant.headers())
        assert r.status_code == 204, r.text
        check_problem(client.get("/v1/crews", headers=bearer(key["secret"])), 401, "Unauthorized")
        assert client.get("/v1/api-keys", headers=tenant.headers()).json()["items"] == []
        again = client.delete(f"/v1/api-keys/{key['id']}", headers=tenant.headers())
        check_problem(again, 404, "NotFound")
        with database() as tx:
            actions = [e.action for e in tx.audit.entries(tenant.workspace_id, key["id"])]
        assert actions == ["api_key.created", "api_key.revoked"]

    def test_a_key_of_another_workspace_cannot_be_revoked_here(self, client, tenant, make_tenant):
        theirs = create(client, make_tenant("Theirs"))
        r = client.delete(f"/v1/api-keys/{theirs['id']}", headers=tenant.headers())
        check_problem(r, 404, "NotFound")

    def test_expired_revoked_malformed_and_unknown_keys_get_one_answer(
        self, client, tenant, database
    ):
        expired = create(client, tenant)
        with database(write=True) as tx:
            tx.connection.execute(
                orm.api_keys.update()
                .where(orm.api_keys.c.id == expired["id"])
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            tx.commit()
        revoked = create(client, tenant)
        client.delete(f"/v1/api-keys/{revoked['id']}", headers=tenant.headers())
        details = set()
        for secret in (
            expired["secret"],
            revoked["secret"],
            "sck_" + "A" * 43,  # unknown
            "sck_short",  # malformed
            "sck_" + "!" * 43,
        ):
            body = check_problem(
                client.get("/v1/crews", headers=bearer(secret)), 401, "Unauthorized"
            )
            details.add(body["detail"])
        assert details == {"Invalid API key: it is unknown, revoked or expired."}

    def test_a_key_secret_is_never_logged(self, client, tenant, caplog):
        with caplog.at_level(logging.DEBUG):
            key = create(client, tenant)
            client.get("/v1/crews", headers=bearer(key["secret"]))
            client.get("/v1/crews", headers=bearer(key["secret"][:-1] + "A"))
            client.delete(f"/v1/api-keys/{key['id']}", headers=tenant.headers())
            client.get("/v1/crews", headers=bearer(key["secret"]))
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert key["secret"][4:] not in logged
