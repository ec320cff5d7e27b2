"""Rate limits (issue 15, ADR 0034): per credential, per client IP, stricter for /v1/auth/*,
per trigger for webhooks; 429 RateLimited with Retry-After and RateLimit-* headers; one budget
shared by two real server processes through the local Redis (127.0.0.1:6379)."""

from __future__ import annotations

import secrets

import httpx
import pytest

from domain.kernel import Role
from scaicrew.app import create_app
from tests.api.helpers import validate_hook
from tests.support.openapi_check import check_problem
from tests.support.processes import launch, wait_until_serving

REDIS = "redis://127.0.0.1:6379/0"


def limited_app(settings, **rates):
    return create_app(
        settings.with_changes(
            RATE_LIMIT_ENABLED=True,
            RATE_LIMIT_KEY_PREFIX=f"test-{secrets.token_hex(6)}",
            worker_threads=0,
            **rates,
        )
    )


@pytest.fixture
def client_for(settings):
    opened = []

    def make(**rates):
        c = limited_app(settings, **rates).test_client()
        c.__enter__()
        c.event_hooks["response"] = [validate_hook]
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)


def refused(response: httpx.Response) -> dict:
    body = check_problem(response, 429, "RateLimited")
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-remaining"] == "0"
    return body


class TestBuckets:
    def test_a_credential_gets_its_budget_and_then_429(self, client_for, tenant):
        c = client_for(RATE_LIMIT_CREDENTIAL="3/minute")
        h = tenant.headers(Role.VIEWER)
        answers = [c.get("/v1/crews", headers=h) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0"]
        assert answers[0].headers["ratelimit-limit"] == "3"
        assert 1 <= int(answers[0].headers["ratelimit-reset"]) <= 60
        refused(c.get("/v1/crews", headers=h))
        # Another credential has its own budget.
        assert c.get("/v1/crews", headers=tenant.headers(Role.AUTHOR)).status_code == 200

    def test_forged_tokens_are_counted_per_client_ip(self, client_for):
        c = client_for(RATE_LIMIT_IP="5/minute")
        statuses = [
            c.get("/v1/crews", headers={"Authorization": f"Bearer forged.{i}.x"}).status_code
            for i in range(6)
        ]
        assert statuses == [401] * 5 + [429]

    def test_login_endpoints_have_a_stricter_budget(self, client_for, tenant):
        c = client_for(RATE_LIMIT_AUTH="2/minute")
        body = {"refresh_token": "rt_" + "x" * 40}
        statuses = [c.post("/v1/auth/refresh", json=body).status_code for _ in range(3)]
        assert statuses == [401, 401, 429]
        refused(c.post("/v1/auth/refresh", json=body))
        assert c.get("/v1/crews", headers=tenant.headers()).status_code == 200

    def test_webhook_ingress_is_limited_per_trigger(self, client_for):
        c = client_for(RATE_LIMIT_WEBHOOK="2/minute")
        one, other = "trg_" + "0" * 26, "trg_" + "1" * 26
        statuses = [c.post(f"/v1/webhooks/{one}", json={}).status_code for _ in range(3)]
        assert statuses[2] == 429 and 429 not in statuses[:2]
        assert c.post(f"/v1/webhooks/{other}", json={}).status_code != 429

    def test_limits_are_off_by_default_outside_production(self, client, tenant):
        r = client.get("/v1/crews", headers=tenant.headers())
        assert "ratelimit-limit" not in r.headers


def test_two_processes_share_one_budget_through_redis(settings, tmp_path, database_url):
    overrides = {
        "DATABASE_URL": database_url,
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_STORAGE": REDIS,
        "RATE_LIMIT_KEY_PREFIX": f"test-{secrets.token_hex(6)}",
        "RATE_LIMIT_AUTH": "4/minute",
        "WORKER_THREADS": "0",  # nothing but HTTP: a quicker start on a loaded machine
        "SCHEDULER_ENABLED": "false",
    }
    servers = [launch(settings, tmp_path / f"serve{i}.log", **overrides) for i in range(2)]
    try:
        for process, url in servers:
            wait_until_serving(process, url)
        body = {"refresh_token": "rt_" + "x" * 40}
        statuses = []
        for i in range(6):  # alternating between the two processes
            _, url = servers[i % 2]
            statuses.append(httpx.post(url + "/v1/auth/refresh", json=body, timeout=10).status_code)
        assert statuses == [401, 401, 401, 401, 429, 429]
    finally:
        for process, _ in servers:
            process.stop()
