"""Login against a provider that is down, answers garbage, or issues ID tokens that must fail.

The provider here is a scriptable loopback HTTP server (tests/support/peers.py) speaking just
enough OIDC: discovery, a JWKS, and a token endpoint whose answer each test chooses. Failures
are a clear 401 or 502 problem, never a 5xx from our code and never a token.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from scaicrew.app import create_app
from scaicrew.settings import Settings
from tests.api.helpers import validate_hook
from tests.support.openapi_check import check_problem
from tests.support.peers import Peer, Recorded, Reply, json_reply
from tests.support.processes import free_port

CLIENT_ID = "scaicrew-failures"
LOGIN = {"login_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}
KID = "peer-key-1"


class FakeProvider:
    """Discovery and JWKS always answer; the token endpoint answers ``self.token_reply``."""

    def __init__(self, *, issuer_slash: str = "") -> None:
        self.issuer_slash = issuer_slash  # "/" for providers whose issuer ends in a slash
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.token_reply: Any = lambda nonce: json_reply({"error": "unset"}, 500)
        self.discovery_reply: Reply | None = None
        self.last_nonce = ""
        self.peer = Peer(self.route).start()

    @property
    def issuer(self) -> str:
        return self.peer.base_url

    def route(self, request: Recorded) -> Reply:
        if request.path == "/.well-known/openid-configuration":
            return self.discovery_reply or json_reply(
                {
                    "issuer": self.issuer + self.issuer_slash,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks",
                }
            )
        if request.path == "/jwks":
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
            return json_reply({"keys": [{**public, "kid": KID, "alg": "RS256", "use": "sig"}]})
        if request.path == "/token":
            return self.token_reply(self.last_nonce)
        return json_reply({"error": "not found"}, 404)

    def id_token(self, expected_nonce: str, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer + self.issuer_slash,
            "aud": CLIENT_ID,
            "sub": f"peer-user-{secrets.token_hex(4)}",
            "iat": now,
            "exp": now + 300,
            "nonce": expected_nonce,
            **overrides,
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KID})


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider()
    yield fake
    fake.peer.close()


def _settings(settings: Settings, issuer: str) -> Settings:

    return settings.with_changes(
        oidc_issuer=issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=SecretStr("secret"),
        oidc_redirect_uri="http://127.0.0.1:9/v1/auth/callback",
        frontend_url="http://127.0.0.1:9/app",
        oidc_timeout_seconds=2.0,
    )


@pytest.fixture(scope="module")
def peer_app(settings: Settings, provider: FakeProvider) -> Any:
    return create_app(_settings(settings, provider.issuer))


@pytest.fixture
def web(peer_app: Any) -> Iterator[httpx.Client]:
    with peer_app.test_client(follow_redirects=False) as c:
        c.event_hooks["response"] = [validate_hook]
        yield c


def start(web: httpx.Client, provider: FakeProvider) -> dict[str, str]:
    """Start a login; the callback parameters the provider would send back."""
    r = web.post("/v1/auth/login", json=LOGIN)
    assert r.status_code == 200, r.text
    nonce = httpx.URL(r.json()["authorization_url"]).params["nonce"]
    provider.last_nonce = nonce
    return {"state": r.json()["state"], "code": "some-code"}


def no_token(response: httpx.Response, status: int, code: str, slug: str) -> None:
    body = check_problem(response, status, code)
    assert body["type"] == f"/problems/{slug}", body
    assert "access_token" not in response.text
    assert "session_code" not in response.headers.get("location", "")


class TestProviderDownOrGarbage:
    def test_login_answers_502_when_the_provider_is_down(self, settings):
        down = create_app(_settings(settings, f"http://127.0.0.1:{free_port()}"))
        with down.test_client() as web:
            web.event_hooks["response"] = [validate_hook]
            r = web.post("/v1/auth/login", json=LOGIN)
        no_token(r, 502, "BadGateway", "identity-provider-unavailable")

    @pytest.mark.parametrize(
        "reply",
        [
            Reply(200, b"<html>not json</html>", "text/html"),
            json_reply(["not", "an", "object"]),
            json_reply({"issuer": "https://someone-else.example"}),
            json_reply({"error": "boom"}, 503),
        ],
        ids=["html", "array", "other-issuer", "503"],
    )
    def test_login_answers_502_when_discovery_is_garbage(self, settings, reply):
        bad = FakeProvider()
        bad.discovery_reply = reply
        try:
            app = create_app(_settings(settings, bad.issuer))
            with app.test_client() as web:
                web.event_hooks["response"] = [validate_hook]
                r = web.post("/v1/auth/login", json=LOGIN)
            no_token(r, 502, "BadGateway", "identity-provider-unavailable")
        finally:
            bad.peer.close()

    @pytest.mark.parametrize(
        "reply",
        [
            lambda nonce: Reply(200, b"garbage", "text/plain"),
            lambda nonce: json_reply({"access_token": "x", "token_type": "Bearer"}),
            lambda nonce: json_reply({"id_token": "not.a.jwt", "token_type": "Bearer"}),
            lambda nonce: json_reply({"error": "server_error"}, 500),
        ],
        ids=["not-json", "no-id-token", "id-token-garbage", "500"],
    )
    def test_the_callback_answers_502_when_the_token_endpoint_answers_garbage(
        self, web, provider, reply
    ):
        provider.token_reply = reply
        no_token(
            web.get("/v1/auth/callback", params=start(web, provider)),
            502,
            "BadGateway",
            "identity-provider-unavailable",
        )

    def test_the_callback_answers_401_when_the_provider_refuses_the_code(self, web, provider):
        provider.token_reply = lambda nonce: json_reply({"error": "invalid_grant"}, 400)
        no_token(
            web.get("/v1/auth/callback", params=start(web, provider)),
            401,
            "Unauthorized",
            "authorization-code-rejected",
        )


class TestIdTokenValidation:
    def test_a_valid_id_token_logs_in(self, web, provider):
        provider.token_reply = lambda nonce: json_reply(
            {"id_token": provider.id_token(nonce), "token_type": "Bearer"}
        )
        r = web.get("/v1/auth/callback", params=start(web, provider))
        assert r.status_code == 302, r.text
        assert "session_code=" in r.headers["location"]

    @pytest.mark.parametrize("configured_slash", ["", "/"])
    def test_an_issuer_ending_in_a_slash_is_matched_as_discovery_spells_it(
        self, settings, configured_slash
    ):
        slashed = FakeProvider(issuer_slash="/")
        slashed.token_reply = lambda nonce: json_reply(
            {"id_token": slashed.id_token(nonce), "token_type": "Bearer"}
        )
        try:
            app = create_app(_settings(settings, slashed.issuer + configured_slash))
            with app.test_client(follow_redirects=False) as web:
                web.event_hooks["response"] = [validate_hook]
                r = web.get("/v1/auth/callback", params=start(web, slashed))
            assert r.status_code == 302, r.text
            assert "session_code=" in r.headers["location"]
        finally:
            slashed.peer.close()

    @pytest.mark.parametrize(
        "overrides",
        [
            {"nonce": "someone-elses-nonce"},
            {"aud": "another-client"},
            {"iss": "https://impostor.example"},
            {"exp": int(time.time()) - 3600},
        ],
        ids=["nonce", "audience", "issuer", "expired"],
    )
    def test_an_id_token_with_wrong_claims_is_refused(self, web, provider, overrides):
        provider.token_reply = lambda nonce: json_reply(
            {"id_token": provider.id_token(nonce, **overrides), "token_type": "Bearer"}
        )
        no_token(
            web.get("/v1/auth/callback", params=start(web, provider)),
            401,
            "Unauthorized",
            "id-token-rejected",
        )

    def test_an_id_token_signed_with_another_key_is_refused(self, web, provider):
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

        def forged(nonce: str) -> Reply:
            claims = jwt.decode(provider.id_token(nonce), options={"verify_signature": False})
            token = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": KID})
            return json_reply({"id_token": token, "token_type": "Bearer"})

        provider.token_reply = forged
        no_token(
            web.get("/v1/auth/callback", params=start(web, provider)),
            401,
            "Unauthorized",
            "id-token-rejected",
        )

    def test_an_id_token_with_an_algorithm_off_the_allow_list_is_refused(self, web, provider):
        def symmetric(nonce: str) -> Reply:
            claims = jwt.decode(provider.id_token(nonce), options={"verify_signature": False})
            token = jwt.encode(claims, "s" * 32, algorithm="HS256", headers={"kid": KID})
            return json_reply({"id_token": token, "token_type": "Bearer"})

        provider.token_reply = symmetric
        no_token(
            web.get("/v1/auth/callback", params=start(web, provider)),
            401,
            "Unauthorized",
            "id-token-rejected",
        )

    def test_the_callback_answers_502_when_the_provider_went_down_after_login(self, settings):
        gone = FakeProvider()
        app = create_app(_settings(settings, gone.issuer))
        with app.test_client(follow_redirects=False) as web:
            web.event_hooks["response"] = [validate_hook]
            params = start(web, gone)
            gone.peer.close()
            r = web.get("/v1/auth/callback", params=params)
        no_token(r, 502, "BadGateway", "identity-provider-unavailable")


class TestLoginNotConfigured:
    def test_login_and_callback_answer_501_without_a_provider(self, client):
        check_problem(client.post("/v1/auth/login", json=LOGIN), 501, "NotImplemented")
        check_problem(client.get("/v1/auth/callback?state=abc&code=def"), 501, "NotImplemented")


class TestCaching:
    def test_discovery_is_fetched_once_for_many_logins(self, web, provider):
        start(web, provider)
        before = len(provider.peer.received(prefix="/.well-known/"))
        for _ in range(3):
            start(web, provider)
        assert len(provider.peer.received(prefix="/.well-known/")) == before

    def test_an_unknown_key_id_refetches_the_jwks_at_most_once_per_cooldown(self, web, provider):
        def unknown_kid(nonce: str) -> Reply:
            claims = jwt.decode(provider.id_token(nonce), options={"verify_signature": False})
            token = jwt.encode(claims, provider.key, algorithm="RS256", headers={"kid": "rotated"})
            return json_reply({"id_token": token, "token_type": "Bearer"})

        provider.token_reply = unknown_kid
        for _ in range(3):
            no_token(
                web.get("/v1/auth/callback", params=start(web, provider)),
                401,
                "Unauthorized",
                "id-token-rejected",
            )
        # Earlier tests cached the JWKS: at most one re-fetch for the unknown kid in 30 s.
        assert len(provider.peer.received(prefix="/jwks")) <= 2
