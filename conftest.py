"""Fixtures shared by every suite: a migrated database, the app, real peers, identities.

``TEST_DATABASE_URL`` (a PostgreSQL URL) makes the whole run use a fresh database created on
that server for this session and dropped afterwards; without it, a SQLite file is used. Under
pytest-xdist each worker is a session of its own: its own database (named after the worker),
app, OIDC provider and JWKS server.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from domain.database import Database
from domain.kernel import Role
from domain.use_cases import UseCases
from scaicrew.app import build_use_cases, create_app
from scaicrew.cli import mint_session_token
from scaicrew.migrate import upgrade
from scaicrew.settings import (
    SchedulerGroup,
    ServiceTokenGroup,
    SessionGroup,
    Settings,
    SubscriptionsGroup,
)
from tests.support.databases import create_postgres, drop_postgres
from tests.support.jwks_server import AUDIENCE, ISSUER, JwksServer, start_jwks_server
from tests.support.oidc_provider import OidcProvider, start_oidc_provider
from tests.support.openapi_check import validate

TEST_SECRET = "test-session-secret-" + "x" * 32

#: Every run checks, at its end, that no secret it created reached a log line (issue 19).
pytest_plugins = ["tests.support.secret_watch"]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")  # gw0, gw1... under xdist
    # tmp_path_factory's base is per xdist worker
    with _migrated_database(f"test_{worker}", tmp_path_factory.mktemp("db")) as url:
        yield url


@contextmanager
def _migrated_database(label: str, directory: Path) -> Iterator[str]:
    """A new migrated database: on ``TEST_DATABASE_URL``'s server when it is set (named after
    ``label``, dropped afterwards), else a SQLite file in ``directory``."""
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        url = f"sqlite:///{directory / 'scaicrew.db'}"
        upgrade(url)
        yield url
        return
    url, name = create_postgres(server, label)
    try:
        upgrade(url)
        yield url
    finally:
        drop_postgres(server, name)


@pytest.fixture(scope="session")
def jwks() -> Iterator[JwksServer]:
    server = start_jwks_server()
    yield server
    server.close()


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """A real OIDC provider process on loopback (oidc-provider-mock)."""
    provider = start_oidc_provider(tmp_path_factory.mktemp("oidc") / "provider.log")
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def settings(database_url: str, jwks: JwksServer) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        session=SessionGroup(secret=SecretStr(TEST_SECRET)),
        service_tokens=ServiceTokenGroup(jwks_url=jwks.url, issuer=ISSUER, audience=AUDIENCE),
        validate_responses=True,
        max_body_bytes=64 * 1024,
        # Tests drive the scheduler's tick with their own clock.
        scheduler=SchedulerGroup(enabled=False),
        # Subscription deliveries run only in the apps of the tests that ask for them (with
        # their own allowed hosts); other apps over the same database must not compete.
        subscriptions=SubscriptionsGroup(delivery_threads=0),
    )


@pytest.fixture(scope="session")
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.database_url)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def use_cases(settings: Settings, database: Database) -> UseCases:
    """Every capability's use cases over the session database (no app, no workers)."""
    return build_use_cases(settings, database)


@pytest.fixture(scope="session")
def app(settings: Settings) -> Any:
    return create_app(settings)


@pytest.fixture
def client(app: Any) -> Iterator[httpx.Client]:
    """An in-process client whose every response is checked against openapi.yaml."""
    with app.test_client() as c:
        c.event_hooks["response"] = [_validate_hook]
        yield c


def _validate_hook(response: httpx.Response) -> None:
    response.read()
    if response.request.url.path.startswith(("/docs", "/openapi.")):
        return
    validate(response)


@dataclass
class Tenant:
    """A fresh workspace with a token per role (and the settings to mint more)."""

    workspace_id: str
    settings: Settings

    def token(self, role: Role = Role.ADMIN, subject: str | None = None, **kw: Any) -> str:
        return mint_session_token(
            self.settings,
            workspace_id=self.workspace_id,
            subject=subject or f"user-{role.label}",
            role=role,
            **kw,
        )

    def headers(self, role: Role = Role.ADMIN, subject: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, subject)}"}


@pytest.fixture
def make_tenant(settings: Settings, use_cases: UseCases) -> Any:
    def make(name: str = "Test workspace") -> Tenant:
        return _new_tenant(settings, use_cases, name)

    return make


def _new_tenant(settings: Settings, use_cases: UseCases, name: str) -> Tenant:
    """A new workspace with a member per role (``user-admin``, ``user-viewer``...)."""
    workspace_id = f"wsp_{secrets.token_hex(13)}"[:30]
    workspaces = use_cases.workspaces
    workspaces.ensure_member(workspace_id, "user-admin", Role.ADMIN, name=name)
    for role in (Role.VIEWER, Role.OPERATOR, Role.AUTHOR):
        workspaces.ensure_member(workspace_id, f"user-{role.label}", role)
    return Tenant(workspace_id, settings)


@pytest.fixture
def tenant(make_tenant: Any) -> Tenant:
    return make_tenant()


@dataclass
class Isolated:
    """A database of a test's own, migrated, with one tenant in it."""

    settings: Settings
    database: Database
    tenant: Tenant


@pytest.fixture
def isolated(settings: Settings, tmp_path: Path) -> Iterator[Isolated]:
    """A database of its own for a test whose apps run workers that serve every workspace of
    their database (subscription deliveries): no other test's app competes with them (a
    module's app is alive through the whole module) and no other test's leftovers are queued
    ahead of theirs. About 0.15 s on SQLite, 0.4 s on PostgreSQL."""
    with _migrated_database("isolated", tmp_path) as url:
        own = settings.with_changes(database_url=url)
        database = Database(url)
        try:
            tenant = _new_tenant(own, build_use_cases(own, database), "Isolated workspace")
            yield Isolated(own, database, tenant)
        finally:
            database.dispose()
