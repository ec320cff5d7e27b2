"""A live server for the generated-client suites: a fresh migrated database (SQLite, or a fresh
database on ``TEST_DATABASE_URL``), uvicorn on a free loopback port in a subprocess, and an admin
session token for a new workspace. The generated client (``make client-python``) is imported
from ``build/clients/python``."""

from __future__ import annotations

import secrets
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "build" / "clients" / "python" / "generated"
sys.path[:0] = [str(ROOT / "contract-tests"), str(GENERATED)]

from pydantic import SecretStr  # noqa: E402
from run_cli import SESSION_SECRET, fresh_database, server  # noqa: E402

from domain.database import Database  # noqa: E402
from domain.kernel import Role  # noqa: E402
from scaicrew.app import build_use_cases  # noqa: E402
from scaicrew.cli import mint_session_token  # noqa: E402
from scaicrew.migrate import upgrade  # noqa: E402
from scaicrew.settings import SessionGroup, Settings  # noqa: E402
from tests.support.processes import free_port  # noqa: E402


@dataclass(frozen=True)
class Live:
    base_url: str
    token: str
    viewer_token: str


@pytest.fixture(scope="session")
def live() -> Iterator[Live]:
    workdir = Path(tempfile.mkdtemp(prefix="scaicrew-clients-"))
    with fresh_database(workdir) as database_url:
        upgrade(database_url)
        settings = Settings(
            env="test",
            database_url=database_url,
            session=SessionGroup(secret=SecretStr(SESSION_SECRET)),
        )
        workspace = f"wsp_{secrets.token_hex(13)}"
        database = Database(database_url)
        try:
            workspaces = build_use_cases(settings, database).workspaces
            workspaces.ensure_member(workspace, "client-admin", Role.ADMIN, name="Clients")
            workspaces.ensure_member(workspace, "client-viewer", Role.VIEWER)
        finally:
            database.dispose()
        token = mint_session_token(
            settings, workspace_id=workspace, subject="client-admin", role=Role.ADMIN
        )
        viewer = mint_session_token(
            settings, workspace_id=workspace, subject="client-viewer", role=Role.VIEWER
        )
        with server(database_url, free_port(), workdir / "uvicorn.log") as base_url:
            yield Live(base_url, token, viewer)
