"""The Alembic migrations are the schema: they produce exactly ``domain.persistence.tables``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from domain.persistence.engine import make_engine
from domain.persistence.tables import metadata
from scaicrew.migrate import downgrade, upgrade
from tests.support.databases import create_postgres, drop_postgres


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """A brand-new, empty database on the same kind of server the session uses."""
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    url, name = create_postgres(server, "migrations")
    yield url
    drop_postgres(server, name)


def _diffs(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


class TestMigrationsMatchTheMetadata:
    def test_a_freshly_migrated_database_has_no_differences_from_the_metadata(
        self, empty_database_url
    ):
        upgrade(empty_database_url)
        assert _diffs(empty_database_url) == []

    def test_the_session_database_has_no_differences_from_the_metadata(self, database_url):
        assert _diffs(database_url) == []

    def test_every_table_of_the_metadata_is_created(self, empty_database_url):
        upgrade(empty_database_url)
        assert _tables(empty_database_url) == set(metadata.tables)


class TestDowngrade:
    def test_downgrading_to_base_removes_every_table_and_upgrading_restores_them(
        self, empty_database_url
    ):
        upgrade(empty_database_url)
        downgrade(empty_database_url)
        assert _tables(empty_database_url) == set()
        upgrade(empty_database_url)
        assert _diffs(empty_database_url) == []
