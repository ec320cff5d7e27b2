"""Throwaway PostgreSQL databases for a test session, a pytest-xdist worker or a contract run.

Each is created on the server named by a URL (``TEST_DATABASE_URL``) under a unique name and
dropped afterwards. Commits in it are not flushed to disk (``synchronous_commit = off``, for
every connection to that database, the servers' under test included): a test database never has
to survive a crash of the PostgreSQL server, and what a transaction sees, locks and notifies is
the same; only the fsync at each commit (milliseconds each, far more on a busy disk) is gone.
SQLite in WAL mode with ``synchronous=NORMAL`` (the project's setting) does not sync at each
commit either.
"""

from __future__ import annotations

import secrets

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def create_postgres(server_url: str, label: str) -> tuple[str, str]:
    """A new empty database on ``server_url``'s server: (its URL, its name)."""
    base = make_url(server_url)
    name = f"scaicrew_{label}_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False), name


def drop_postgres(server_url: str, name: str) -> None:
    admin = create_engine(make_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
