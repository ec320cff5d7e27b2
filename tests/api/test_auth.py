"""Credentials: session tokens, service tokens from a real JWKS, and dev-only headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from domain.kernel import Role
from scaicrew.app import create_app
from tests.api.helpers import create_crew, unique, validate_hook
from tests.support.jwks_server import ISSUER
from tests.support.openapi_check import check_problem


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def session_claims(tenant: Any, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": tenant.settings.session.issuer,
        "aud": tenant.settings.session.audience,
        "sub": "user-admin",
        "tenant_id": "default",
        "workspace_id": tenant.workspace_id,
        "role": "admin",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign_session(tenant: Any, **overrides: Any) -> str:
    secret = tenant.settings.session.secret.get_secret_value()
    return jwt.encode(session_claims(tenant, **overrides), secret, algorithm="HS256")


def unauthorized(r: Any, mentions: str | None = None) -> dict[str, Any]:
    body = check_problem(r, 401, "Unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")
    if mentions is not None:
        assert mentions in body["error"]["message"], body["error"]["message"]
    return body


class TestMissingOrMalformedCredentials:
    def test_no_credentials_is_unauthorized_with_a_www_authenticate_challenge(self, client):
        unauthorized(client.get("/v1/crews"))

    def test_a_garbage_bearer_token_is_unauthorized(self, client):
        unauthorized(client.get("/v1/crews", headers=bearer("garbage")), "well-formed")

    def test_another_authorization_scheme_is_unauthorized(self, client):
        unauthorized(client.get("/v1/crews", headers={"Authorization": "Basic dXNlcjpwYXNz"}))

    def test_a_token_with_a_mangled_signature_is_unauthorized(self, client, tenant):
        token = tenant.token(Role.ADMIN)
        mangled = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        unauthorized(client.get("/v1/crews", headers=bearer(mangled)))


class TestSessionTokens:
    def test_a_valid_session_token_acts_in_its_workspace(self, client, tenant):
        r = client.get("/v1/workspace", headers=tenant.headers(Role.VIEWER))
        assert r.status_code == 200
        assert r.json()["id"] == tenant.workspace_id

    def test_an_expired_session_token_is_unauthorized(self, client, tenant):
        token = tenant.token(Role.VIEWER, ttl_seconds=60, now=int(time.time()) - 3600)
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "expired")

    def test_a_token_for_another_audience_is_unauthorized(self, client, tenant):
        token = sign_session(tenant, aud="some-other-api")
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "audience")

    def test_a_token_from_another_issuer_is_unauthorized(self, client, tenant):
        token = sign_session(tenant, iss="https://evil.example")
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "issuer")

    def test_a_token_signed_with_another_secret_is_unauthorized(self, client, tenant):
        token = jwt.encode(session_claims(tenant), "another-secret-" + "y" * 32, "HS256")
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "signature")

    def test_a_token_without_an_expiry_is_unauthorized(self, client, tenant):
        token = sign_session(tenant, exp=None)
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "exp")

    def test_a_token_without_a_workspace_is_unauthorized(self, client, tenant):
        token = sign_session(tenant, workspace_id=None)
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "workspace_id")

    def test_a_token_with_an_unknown_role_is_unauthorized(self, client, tenant):
        token = sign_session(tenant, role="owner")
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "role")

    def test_a_token_for_a_workspace_that_does_not_exist_is_unauthorized(self, client, tenant):
        token = sign_session(tenant, workspace_id=f"wsp_{secrets.token_hex(13)}")
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "does not exist")

    def test_an_unsigned_alg_none_token_is_unauthorized(self, client, tenant):
        header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        payload = b64(json.dumps(session_claims(tenant)).encode())
        unauthorized(client.get("/v1/workspace", headers=bearer(f"{header}.{payload}.")))

    def test_an_hs256_token_signed_with_the_rsa_public_key_is_unauthorized(
        self, client, tenant, jwks
    ):
        pem = jwks.rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for kid in (None, "rsa-1"):
            head: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
            if kid:
                head["kid"] = kid
            claims = {
                "iss": ISSUER,
                "aud": "scaicrew-api",
                "sub": "attacker",
                "workspace_id": tenant.workspace_id,
                "role": "admin",
                "iat": int(time.time()),
                "exp": int(time.time()) + 600,
            }
            signing_input = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims).encode())}"
            signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
            token = f"{signing_input}.{b64(signature)}"
            unauthorized(client.get("/v1/workspace", headers=bearer(token)))


class TestServiceTokens:
    @pytest.mark.parametrize(("alg", "kid"), [("RS256", "rsa-1"), ("ES256", "ec-1")])
    def test_a_service_token_from_the_jwks_acts_in_its_workspace_claim(
        self, client, tenant, jwks, alg, kid
    ):
        token = jwks.service_token(workspace_id=tenant.workspace_id, alg=alg, kid=kid)
        r = client.get("/v1/workspace", headers=bearer(token))
        assert r.status_code == 200, r.text
        assert r.json()["id"] == tenant.workspace_id

    def test_a_service_token_is_not_role_gated(self, client, tenant, jwks):
        token = jwks.service_token(workspace_id=tenant.workspace_id, sub="svc-admin-work")
        patched = client.patch("/v1/workspace", json={"name": "By service"}, headers=bearer(token))
        assert patched.status_code == 200, patched.text
        crew = client.post("/v1/crews", json={"name": unique("Svc")}, headers=bearer(token))
        assert crew.status_code == 201
        listed = client.get("/v1/crews", headers=tenant.headers(Role.VIEWER)).json()["items"]
        assert crew.json()["id"] in [c["id"] for c in listed]

    def test_a_service_caller_records_its_own_subject(self, client, tenant, jwks):
        token = jwks.service_token(workspace_id=tenant.workspace_id, sub="svc-recorder")
        crew = create_crew(client, bearer(token))
        member = client.post(
            "/v1/members",
            json={"crew_id": crew["id"], "name": unique("M"), "definition": {"objective": "x"}},
            headers=bearer(token),
        ).json()
        draft = client.get(f"/v1/members/{member['id']}/draft", headers=bearer(token)).json()
        assert draft["created_by"] == "svc-recorder"

    def test_a_service_token_without_a_kid_is_unauthorized(self, client, tenant, jwks):
        token = jwks.service_token(workspace_id=tenant.workspace_id, kid=None)
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "kid")

    def test_a_service_token_with_an_unknown_kid_is_unauthorized(self, client, tenant, jwks):
        token = jwks.service_token(workspace_id=tenant.workspace_id, kid="rotated-away")
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "unknown")

    def test_a_service_token_without_a_workspace_claim_is_unauthorized(self, client, jwks):
        token = jwks.service_token(workspace_id=None)
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "workspace_id")

    def test_a_service_token_for_a_workspace_that_does_not_exist_is_unauthorized(
        self, client, jwks
    ):
        token = jwks.service_token(workspace_id=f"wsp_{secrets.token_hex(13)}")
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "does not exist")

    def test_a_service_token_from_another_issuer_is_unauthorized(self, client, tenant, jwks):
        token = jwks.service_token(workspace_id=tenant.workspace_id, issuer="https://evil")
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "issuer")

    def test_a_service_token_for_another_audience_is_unauthorized(self, client, tenant, jwks):
        token = jwks.service_token(workspace_id=tenant.workspace_id, audience="other-api")
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "audience")

    def test_an_expired_service_token_is_unauthorized(self, client, tenant, jwks):
        token = jwks.service_token(workspace_id=tenant.workspace_id, expires_in=-3600)
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "expired")

    def test_a_service_token_signed_by_a_key_outside_the_jwks_is_unauthorized(
        self, client, tenant, jwks
    ):
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = jwks.service_token(workspace_id=tenant.workspace_id, key=stranger)
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "signature")

    @pytest.mark.parametrize(("alg", "kid"), [("RS256", "ec-1"), ("ES256", "rsa-1")])
    def test_a_header_algorithm_that_does_not_fit_the_named_key_is_unauthorized(
        self, client, tenant, jwks, alg, kid
    ):
        token = jwks.service_token(workspace_id=tenant.workspace_id, alg=alg, kid=kid)
        unauthorized(client.get("/v1/workspace", headers=bearer(token)))

    def test_an_algorithm_outside_the_allow_list_is_unauthorized(self, client, tenant, jwks):
        token = jwks.service_token(workspace_id=tenant.workspace_id, alg="RS512")
        unauthorized(client.get("/v1/workspace", headers=bearer(token)), "RS512")


DEV_HEADERS = ("X-Dev-Workspace-Id", "X-Dev-Subject", "X-Dev-Role")


def dev_headers(workspace_id: str, role: str | None = None) -> dict[str, str]:
    headers = {"X-Dev-Workspace-Id": workspace_id, "X-Dev-Subject": "dev-person"}
    if role:
        headers["X-Dev-Role"] = role
    return headers


class TestDevHeadersOutsideDev:
    def test_dev_headers_are_ignored_in_the_test_environment(self, client, tenant):
        r = client.get("/v1/workspace", headers=dev_headers(tenant.workspace_id, "admin"))
        unauthorized(r)

    def test_dev_headers_do_not_create_a_workspace_outside_dev(self, client, tenant, database):
        workspace_id = f"wsp_{secrets.token_hex(13)}"
        unauthorized(client.get("/v1/workspace", headers=dev_headers(workspace_id)))
        with database() as tx:
            assert not tx.workspaces.exists(workspace_id)


@pytest.fixture(scope="module")
def dev_app(settings: Any) -> Any:
    return create_app(settings.with_changes(env="dev"))


@pytest.fixture
def dev_client(dev_app: Any) -> Iterator[Any]:
    with dev_app.test_client() as c:
        c.event_hooks["response"] = [validate_hook]
        yield c


class TestDevHeadersInDev:
    def test_only_a_dev_servers_contract_lists_the_dev_headers(self, dev_client, client):
        dev = dev_client.get("/openapi.json").json()
        assert dev["components"]["securitySchemes"]["devHeaders"]["name"] == "X-Dev-Workspace-Id"
        assert {"devHeaders": []} in dev["security"]
        served = client.get("/openapi.json").json()
        assert "devHeaders" not in served["components"]["securitySchemes"]
        assert {"devHeaders": []} not in served["security"]

    def test_dev_headers_are_accepted_and_create_the_workspace(self, dev_client):
        workspace_id = f"wsp_{secrets.token_hex(13)}"
        r = dev_client.get("/v1/workspace", headers=dev_headers(workspace_id))
        assert r.status_code == 200, r.text
        assert r.json()["id"] == workspace_id

    def test_the_dev_role_header_is_role_gated_like_a_session(self, dev_client):
        workspace_id = f"wsp_{secrets.token_hex(13)}"
        r = dev_client.post(
            "/v1/crews", json={"name": "Dev crew"}, headers=dev_headers(workspace_id, "viewer")
        )
        check_problem(r, 403, "Forbidden")

    def test_without_a_role_header_the_dev_caller_is_an_admin(self, dev_client):
        workspace_id = f"wsp_{secrets.token_hex(13)}"
        r = dev_client.patch(
            "/v1/workspace", json={"name": "Dev"}, headers=dev_headers(workspace_id)
        )
        assert r.status_code == 200, r.text

    def test_an_unknown_dev_role_is_unauthorized(self, dev_client):
        r = dev_client.get(
            "/v1/workspace", headers=dev_headers(f"wsp_{secrets.token_hex(13)}", "overlord")
        )
        unauthorized(r, "role")

    def test_a_session_token_still_works_in_dev(self, dev_client, tenant):
        r = dev_client.get("/v1/workspace", headers=tenant.headers(Role.VIEWER))
        assert r.status_code == 200
        assert r.json()["id"] == tenant.workspace_id
