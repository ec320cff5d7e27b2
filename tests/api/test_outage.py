"""Honest outages: when the database cannot be reached, requests answer 503
``ServiceUnavailable`` with ``Retry-After`` within bounded time, ``/ready`` answers 503 and
``/health`` stays liveness; when it is back, everything answers again by itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from domain.kernel import Role
from scaicrew.migrate import upgrade
from tests.support.openapi_check import check_problem
from tests.support.processes import free_port
from tests.support.runs import app_client
from tests.support.tcp_proxy import TcpProxy

#: A PostgreSQL URL where nothing listens: every connection is refused at once.
NOWHERE = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/absent"

REQUESTS = [
    ("GET", "/v1/crews", None),
    ("POST", "/v1/crews", {"name": "Outage crew"}),
    ("GET", "/v1/runs", None),
    ("GET", "/v1/workspace", None),
]


def unavailable(r: httpx.Response) -> None:
    check_problem(r, 503, "ServiceUnavailable")
    assert int(r.headers["Retry-After"]) > 0


@pytest.fixture(scope="module")
def down(settings: Any) -> Iterator[httpx.Client]:
    with app_client(settings, database_url=NOWHERE, worker_threads=0) as c:
        yield c


@pytest.mark.parametrize(("method", "path", "body"), REQUESTS)
def test_requests_answer_503_with_retry_after_in_bounded_time(down, tenant, method, path, body):
    began = time.monotonic()
    r = down.request(method, path, json=body, headers=tenant.headers(Role.ADMIN))
    assert time.monotonic() - began < 10
    unavailable(r)


def test_ready_answers_503_and_health_stays_200(down):
    unavailable(down.get("/ready"))
    assert down.get("/health").status_code == 200


def test_ready_answers_503_until_the_migrations_are_at_head(settings, tmp_path):
    url = f"sqlite:///{tmp_path / 'unmigrated.db'}"
    with app_client(settings, database_url=url, worker_threads=0) as api:
        r = api.get("/ready")
        unavailable(r)
        assert "run the migrations" in r.json()["detail"]
        upgrade(url, "0007")
        assert "revision 0007" in api.get("/ready").json()["detail"]
        upgrade(url)
        assert api.get("/ready").status_code == 200


def test_ready_answers_200_when_the_database_answers_at_head(client):
    r = client.get("/ready")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready"}


@pytest.mark.postgres
def test_a_database_that_goes_away_and_comes_back(settings, tenant):
    """Between the server and PostgreSQL, a proxy drops every connection and refuses new ones:
    503s (never 500s, never a hang), then, once it is back, answers by themselves."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("needs TEST_DATABASE_URL (PostgreSQL)")
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    h = tenant.headers(Role.ADMIN)
    try:
        with app_client(settings, database_url=proxied, worker_threads=0) as api:
            assert api.get("/v1/crews", headers=h).status_code == 200
            assert api.get("/ready").status_code == 200
            proxy.cut()
            for method, path, body in REQUESTS * 2:
                began = time.monotonic()
                unavailable(api.request(method, path, json=body, headers=h))
                assert time.monotonic() - began < 10
            unavailable(api.get("/ready"))
            assert api.get("/health").status_code == 200
            proxy.restore()
            deadline = time.monotonic() + 15
            while api.get("/ready").status_code != 200:
                assert time.monotonic() < deadline, "not ready again"
                time.sleep(0.2)
            for method, path, body in REQUESTS:
                r = api.request(method, path, json=body, headers=h)
                assert r.status_code < 300, r.text
    finally:
        proxy.close()
