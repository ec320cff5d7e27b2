"""Login end to end against a real OIDC provider process (oidc-provider-mock) on loopback.

The browser's part is played by httpx: the login answer's authorize URL is POSTed to the
provider with a subject (its consent form), the provider's redirect is followed to our
callback by hand, and the callback's redirect to the front end yields the session code.
Every response is validated against openapi.yaml; no failure may carry a token.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from domain.database import Database
from domain.identity import digest, pkce_challenge
from domain.persistence import tables as orm
from scaicrew.app import create_app
from scaicrew.settings import Settings
from tests.api.helpers import validate_hook
from tests.support.oidc_provider import OidcProvider, login_settings
from tests.support.openapi_check import check_problem

TENANT_CLAIM = "tenant"


@pytest.fixture(scope="module")
def login_app(settings: Settings, oidc_provider: OidcProvider) -> Any:
    return create_app(login_settings(settings, oidc_provider, oidc_tenant_claim=TENANT_CLAIM))


@pytest.fixture
def web(login_app: Any) -> Iterator[httpx.Client]:
    with login_app.test_client(follow_redirects=False) as c:
        c.event_hooks["response"] = [validate_hook]
        yield c


class Browser:
    """Drives the redirects of one login the way a browser would.

    Its front end keeps one login verifier (as it would in ``sessionStorage``) and sends its
    S256 challenge to ``/v1/auth/login`` and the verifier itself with each session code.
    """

    def __init__(self, web: httpx.Client, provider: OidcProvider) -> None:
        self.web = web
        self.provider = provider
        self.verifier = secrets.token_urlsafe(48)

    def start(self) -> dict[str, Any]:
        r = self.web.post("/v1/auth/login", json={"login_challenge": pkce_challenge(self.verifier)})
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        return dict(r.json())

    def at_provider(self, subject: str) -> dict[str, str]:
        """Log in at the provider; the query our callback receives."""
        redirect = self.provider.authorize(self.start()["authorization_url"], subject)
        return dict(redirect.params)

    def callback(self, params: dict[str, str]) -> httpx.Response:
        return self.web.get("/v1/auth/callback", params=params)

    def session_code(self, subject: str) -> str:
        return self.session_code_from(self.at_provider(subject))

    def session_code_from(self, params: dict[str, str]) -> str:
        r = self.callback(params)
        assert r.status_code == 302, r.text
        location = httpx.URL(r.headers["location"])
        assert str(location).startswith("http://127.0.0.1:9/app?")
        return location.params["session_code"]

    def redeem(self, code: str, workspace_id: str | None = None) -> httpx.Response:
        body = {"session_code": code, "login_verifier": self.verifier}
        if workspace_id:
            body["workspace_id"] = workspace_id
        return self.web.post("/v1/auth/token", json=body)

    def tokens(self, subject: str, workspace_id: str | None = None) -> dict[str, Any]:
        r = self.redeem(self.session_code(subject), workspace_id)
        assert r.status_code == 200, r.text
        body = dict(r.json())
        assert body["requires_selection"] is False, body
        return body

    def refresh(self, token: str, workspace_id: str | None = None) -> httpx.Response:
        body = {"refresh_token": token}
        if workspace_id:
            body["workspace_id"] = workspace_id
        return self.web.post("/v1/auth/refresh", json=body)


@pytest.fixture
def browser(web: httpx.Client, oidc_provider: OidcProvider) -> Browser:
    return Browser(web, oidc_provider)


def new_user(provider: OidcProvider, tenant: str, name: str = "user") -> str:
    subject = f"{name}-{secrets.token_hex(6)}"
    provider.set_user(
        subject, {TENANT_CLAIM: tenant, "email": f"{subject}@example.test", "name": name.title()}
    )
    return subject


def new_tenant() -> str:
    return f"tenant-{secrets.token_hex(6)}"


def bearer(grant: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {grant['access_token']}"}


def rejected(response: httpx.Response, status: int, code: str, slug: str) -> dict[str, Any]:
    body = check_problem(response, status, code)
    assert body["type"] == f"/problems/{slug}", body
    assert "access_token" not in response.text and 'refresh_token":' not in response.text
    return body


def expire(database: Database, table: Any, column: Any, value: str) -> None:
    with database.engine.begin() as conn:
        conn.execute(
            update(table)
            .where(column == value)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


class TestFirstLogin:
    def test_the_first_user_of_a_tenant_becomes_admin_of_a_default_workspace(
        self, browser, web, oidc_provider
    ):
        tenant = new_tenant()
        subject = new_user(oidc_provider, tenant, "founder")
        grant = browser.tokens(subject)

        assert grant["token_type"] == "Bearer"
        assert grant["workspace"]["role"] == "admin"
        assert grant["workspace"]["name"] == "Default workspace"
        workspace = web.get("/v1/workspace", headers=bearer(grant))
        assert workspace.status_code == 200, workspace.text
        assert workspace.json()["tenant_id"] == tenant
        members = web.get("/v1/workspace/members", headers=bearer(grant)).json()["items"]
        assert members == [
            {
                "subject": subject,
                "role": "admin",
                "email": f"{subject}@example.test",
                "name": "Founder",
                "created_at": members[0]["created_at"],
            }
        ]

    def test_the_login_answer_points_at_the_providers_authorize_endpoint_with_pkce(
        self, browser, oidc_provider
    ):
        started = browser.start()
        url = httpx.URL(started["authorization_url"])
        assert str(url).startswith(f"{oidc_provider.issuer}/oauth2/authorize?")
        assert url.params["state"] == started["state"]
        assert url.params["code_challenge_method"] == "S256"
        assert len(url.params["code_challenge"]) == 43
        assert url.params["nonce"] and url.params["client_id"] == "scaicrew-test"

    def test_a_later_user_of_the_tenant_has_no_workspace_until_an_admin_adds_them(
        self, browser, web, oidc_provider
    ):
        tenant = new_tenant()
        admin = browser.tokens(new_user(oidc_provider, tenant, "admin"))
        newcomer = new_user(oidc_provider, tenant, "newcomer")

        rejected(browser.redeem(browser.session_code(newcomer)), 403, "Forbidden", "no-workspace")

        added = web.post(
            "/v1/workspace/members",
            json={"subject": newcomer, "role": "operator"},
            headers=bearer(admin),
        )
        assert added.status_code == 201, added.text
        grant = browser.tokens(newcomer)
        assert grant["workspace"] == {**admin["workspace"], "role": "operator"}

    def test_racing_first_users_bootstrap_exactly_one_admin(self, browser, oidc_provider):
        tenant = new_tenant()
        subjects = [new_user(oidc_provider, tenant, f"racer{i}") for i in range(4)]
        callbacks = [browser.at_provider(s) for s in subjects]
        barrier = threading.Barrier(len(callbacks))
        answers: list[httpx.Response] = []

        def finish(params: dict[str, str]) -> None:
            barrier.wait()
            answers.append(browser.callback(params))

        threads = [threading.Thread(target=finish, args=(p,)) for p in callbacks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert [a.status_code for a in answers] == [302] * 4
        codes = [httpx.URL(a.headers["location"]).params["session_code"] for a in answers]
        statuses = sorted(browser.redeem(code).status_code for code in codes)
        assert statuses == [200, 403, 403, 403]


class TestSessionCodes:
    def test_a_session_code_is_redeemed_once(self, browser, oidc_provider):
        code = browser.session_code(new_user(oidc_provider, new_tenant()))
        assert browser.redeem(code).status_code == 200
        rejected(browser.redeem(code), 401, "Unauthorized", "invalid-session-code")

    def test_an_expired_session_code_is_refused(self, browser, oidc_provider, database):
        code = browser.session_code(new_user(oidc_provider, new_tenant()))
        expire(database, orm.session_codes, orm.session_codes.c.code_hash, digest(code))
        rejected(browser.redeem(code), 401, "Unauthorized", "invalid-session-code")

    def test_an_unknown_session_code_is_refused(self, browser):
        rejected(browser.redeem("x" * 43), 401, "Unauthorized", "invalid-session-code")

    def test_several_workspaces_require_a_selection_then_the_code_is_spent(
        self, browser, web, oidc_provider
    ):
        subject = new_user(oidc_provider, new_tenant())
        first = browser.tokens(subject)
        created = web.post("/v1/workspaces", json={"name": "Second"}, headers=bearer(first))
        assert created.status_code == 201, created.text
        second_id = created.json()["id"]

        code = browser.session_code(subject)
        selection = browser.redeem(code)
        assert selection.status_code == 200
        assert selection.json()["requires_selection"] is True
        listed = {w["workspace_id"]: w for w in selection.json()["workspaces"]}
        assert listed.keys() == {first["workspace"]["workspace_id"], second_id}
        assert "access_token" not in selection.text

        not_mine = browser.redeem(code, "wsp_" + "0" * 26)
        rejected(not_mine, 404, "NotFound", "not-found")

        chosen = browser.redeem(code, second_id)
        assert chosen.status_code == 200, chosen.text
        assert chosen.json()["workspace"] == {
            "workspace_id": second_id,
            "name": "Second",
            "role": "admin",
        }
        rejected(browser.redeem(code, second_id), 401, "Unauthorized", "invalid-session-code")


class TestLoginBoundToItsBrowser:
    """Login CSRF: the attacker logs in as themselves and hands the callback link to a victim."""

    def test_the_attackers_callback_link_logs_the_victim_in_as_nobody(self, web, oidc_provider):
        attacker = Browser(web, oidc_provider)
        victim = Browser(web, oidc_provider)
        attacker_subject = new_user(oidc_provider, new_tenant(), "attacker")
        # The attacker starts a login, signs in at the provider and keeps the callback link.
        link = attacker.at_provider(attacker_subject)
        # The victim's front end has started a login of its own (it holds a verifier).
        victim.start()
        # The victim's browser follows the link: the callback still redirects to the front
        # end, but the code it carries is bound to the attacker's verifier.
        code = victim.session_code_from(link)
        rejected(victim.redeem(code), 401, "Unauthorized", "invalid-session-code")
        # Presenting it with the wrong verifier burnt it: it is worthless to everyone now.
        rejected(attacker.redeem(code), 401, "Unauthorized", "invalid-session-code")

    def test_the_browser_that_started_the_login_redeems_its_code(self, browser, oidc_provider):
        grant = browser.tokens(new_user(oidc_provider, new_tenant()))
        assert grant["access_token"]

    def test_a_code_without_a_verifier_is_a_bad_request(self, browser, web, oidc_provider):
        code = browser.session_code(new_user(oidc_provider, new_tenant()))
        r = web.post("/v1/auth/token", json={"session_code": code})
        body = check_problem(r, 400, "ValidationError")
        assert "login_verifier" in r.text, body
        assert browser.redeem(code).status_code == 200  # a malformed call does not burn it

    def test_a_login_without_a_challenge_is_a_bad_request(self, web):
        r = web.post("/v1/auth/login", json={})
        check_problem(r, 400, "ValidationError")
        assert "login_challenge" in r.text


class TestRevokedLogins:
    def test_reusing_a_refresh_token_also_stops_the_logins_session_tokens(
        self, browser, web, oidc_provider
    ):
        grant = browser.tokens(new_user(oidc_provider, new_tenant()))
        assert web.get("/v1/workspace", headers=bearer(grant)).status_code == 200
        rotated = browser.refresh(grant["refresh_token"])
        assert rotated.status_code == 200, rotated.text
        assert web.get("/v1/workspace", headers=bearer(rotated.json())).status_code == 200
        # Someone presents the spent refresh token again: the whole login is revoked ...
        rejected(
            browser.refresh(grant["refresh_token"]), 401, "Unauthorized", "refresh-token-reused"
        )
        # ... and every session token of that login stops working on the next request.
        for token in (grant, rotated.json()):
            body = check_problem(
                web.get("/v1/workspace", headers=bearer(token)), 401, "Unauthorized"
            )
            assert "revoked" in body["detail"]


class TestCallback:
    def test_an_unknown_state_is_refused(self, browser, oidc_provider):
        params = browser.at_provider(new_user(oidc_provider, new_tenant()))
        rejected(
            browser.callback({**params, "state": "forged"}), 401, "Unauthorized", "invalid-state"
        )

    def test_a_replayed_state_is_refused(self, browser, oidc_provider):
        params = browser.at_provider(new_user(oidc_provider, new_tenant()))
        assert browser.callback(params).status_code == 302
        rejected(browser.callback(params), 401, "Unauthorized", "invalid-state")

    def test_an_expired_state_is_refused(self, browser, oidc_provider, database):
        params = browser.at_provider(new_user(oidc_provider, new_tenant()))
        expire(database, orm.login_states, orm.login_states.c.state_hash, digest(params["state"]))
        rejected(browser.callback(params), 401, "Unauthorized", "invalid-state")

    def test_a_code_the_provider_does_not_know_is_refused(self, browser, oidc_provider):
        params = browser.at_provider(new_user(oidc_provider, new_tenant()))
        rejected(
            browser.callback({**params, "code": "not-a-code"}),
            401,
            "Unauthorized",
            "authorization-code-rejected",
        )

    def test_a_login_the_user_denied_at_the_provider_is_refused(self, browser, oidc_provider):
        started = browser.start()
        redirect = oidc_provider.deny(started["authorization_url"])
        assert redirect.params["error"] == "access_denied"
        # This provider leaves the state out of a denial; real ones send it back.
        params = {"state": started["state"], **dict(redirect.params)}
        rejected(browser.callback(params), 401, "Unauthorized", "login-denied")
        rejected(browser.callback(params), 401, "Unauthorized", "invalid-state")


class TestRefresh:
    def test_refresh_rotates_the_token_and_reuse_revokes_the_family(
        self, browser, web, oidc_provider
    ):
        grant = browser.tokens(new_user(oidc_provider, new_tenant()))
        first = grant["refresh_token"]
        rotated = browser.refresh(first)
        assert rotated.status_code == 200, rotated.text
        second = rotated.json()["refresh_token"]
        assert second != first
        assert web.get("/v1/workspace", headers=bearer(rotated.json())).status_code == 200

        rejected(browser.refresh(first), 401, "Unauthorized", "refresh-token-reused")
        # The thief's use of the old token cost the legitimate holder the whole login.
        rejected(browser.refresh(second), 401, "Unauthorized", "refresh-token-revoked")

    def test_a_tampered_refresh_token_is_refused(self, browser, oidc_provider):
        grant = browser.tokens(new_user(oidc_provider, new_tenant()))
        token = grant["refresh_token"]
        tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        rejected(browser.refresh(tampered), 401, "Unauthorized", "invalid-refresh-token")
        assert browser.refresh(token).status_code == 200

    def test_an_expired_refresh_token_is_refused(self, browser, oidc_provider, database):
        grant = browser.tokens(new_user(oidc_provider, new_tenant()))
        token = grant["refresh_token"]
        table = orm.refresh_tokens
        expire(database, table, table.c.token_hash, digest(token))
        rejected(browser.refresh(token), 401, "Unauthorized", "refresh-token-expired")

    def test_refresh_reads_the_role_again(self, browser, web, oidc_provider):
        tenant = new_tenant()
        admin = browser.tokens(new_user(oidc_provider, tenant, "admin"))
        member = new_user(oidc_provider, tenant, "member")
        web.post(
            "/v1/workspace/members",
            json={"subject": member, "role": "viewer"},
            headers=bearer(admin),
        )
        grant = browser.tokens(member)
        assert grant["workspace"]["role"] == "viewer"
        changed = web.patch(
            f"/v1/workspace/members/{member}", json={"role": "author"}, headers=bearer(admin)
        )
        assert changed.status_code == 200, changed.text

        refreshed = browser.refresh(grant["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["workspace"]["role"] == "author"
        crew = web.post("/v1/crews", json={"name": "By author"}, headers=bearer(refreshed.json()))
        assert crew.status_code == 201, crew.text

    def test_a_removed_member_gets_no_new_token(self, browser, web, oidc_provider):
        tenant = new_tenant()
        admin = browser.tokens(new_user(oidc_provider, tenant, "admin"))
        member = new_user(oidc_provider, tenant, "member")
        web.post(
            "/v1/workspace/members",
            json={"subject": member, "role": "viewer"},
            headers=bearer(admin),
        )
        grant = browser.tokens(member)
        removed = web.delete(f"/v1/workspace/members/{member}", headers=bearer(admin))
        assert removed.status_code == 204

        rejected(browser.refresh(grant["refresh_token"]), 403, "Forbidden", "membership-revoked")
        rejected(
            browser.refresh(grant["refresh_token"]), 401, "Unauthorized", "refresh-token-revoked"
        )

    def test_refresh_switches_to_another_workspace_of_the_user_only(
        self, browser, web, oidc_provider
    ):
        grant = browser.tokens(new_user(oidc_provider, new_tenant()))
        other = browser.tokens(new_user(oidc_provider, new_tenant()))
        created = web.post("/v1/workspaces", json={"name": "Lab"}, headers=bearer(grant))
        lab = created.json()["id"]

        foreign = other["workspace"]["workspace_id"]
        rejected(browser.refresh(grant["refresh_token"], foreign), 404, "NotFound", "not-found")

        switched = browser.refresh(grant["refresh_token"], lab)  # still usable after the 404
        assert switched.status_code == 200, switched.text
        assert switched.json()["workspace"]["workspace_id"] == lab
        workspace = web.get("/v1/workspace", headers=bearer(switched.json()))
        assert workspace.json()["id"] == lab
        back = browser.refresh(switched.json()["refresh_token"])
        assert back.json()["workspace"]["workspace_id"] == lab

    def test_two_refreshes_racing_with_one_token_cannot_both_win(self, web, browser, oidc_provider):
        grant = browser.tokens(new_user(oidc_provider, new_tenant()))
        barrier = threading.Barrier(2)
        answers: list[httpx.Response] = []

        # Both requests at once through the test's one client (one app lifespan).
        def refresh() -> None:
            barrier.wait()
            answers.append(
                web.post("/v1/auth/refresh", json={"refresh_token": grant["refresh_token"]})
            )

        threads = [threading.Thread(target=refresh) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(a.status_code for a in answers) == [200, 401]
        winner = next(a for a in answers if a.status_code == 200).json()
        # The loser looked like a replay: the whole login is revoked, the winner's token too.
        rejected(
            browser.refresh(winner["refresh_token"]), 401, "Unauthorized", "refresh-token-revoked"
        )


class TestAudit:
    def test_a_login_and_each_refresh_write_one_entry_in_the_workspace_they_open(
        self, browser, web, oidc_provider
    ):
        subject = new_user(oidc_provider, new_tenant(), "audited")
        grant = browser.tokens(subject)
        rotated = browser.refresh(grant["refresh_token"])
        assert rotated.status_code == 200, rotated.text
        r = web.get("/v1/audit", params={"actor": subject}, headers=bearer(rotated.json()))
        assert r.status_code == 200, r.text
        entries = [(e["action"], e["target_type"], e["target_id"]) for e in r.json()["items"]]
        assert entries == [
            ("session.refreshed", "user", subject),
            ("login.succeeded", "user", subject),
        ]
