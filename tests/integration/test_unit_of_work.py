"""The unit of work: one use case, one transaction; commit persists, anything else rolls back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.database import Database
from domain.workspaces import Workspace
from tests.integration.conftest import fresh_workspace_id


def _workspace() -> Workspace:
    now = datetime.now(UTC)
    return Workspace(fresh_workspace_id(), "tenant", "Unit of work", "", now, now)


def _exists(database: Database, workspace_id: str) -> bool:
    with database() as tx:
        return tx.workspaces.exists(workspace_id)


class Boom(Exception):
    pass


class TestCommit:
    def test_a_committed_write_is_visible_to_a_later_unit_of_work(self, database):
        workspace = _workspace()
        with database(write=True) as tx:
            tx.workspaces.add(workspace)
            tx.commit()
        with database() as tx:
            stored = tx.workspaces.get(workspace.id)
        assert stored == workspace

    def test_an_uncommitted_write_is_invisible_to_a_concurrent_reader(self, database):
        workspace = _workspace()
        with database(write=True) as tx:
            tx.workspaces.add(workspace)
            assert not _exists(database, workspace.id)
            tx.commit()
        assert _exists(database, workspace.id)


class TestRollback:
    def test_leaving_the_block_without_commit_rolls_back(self, database):
        workspace = _workspace()
        with database(write=True) as tx:
            tx.workspaces.add(workspace)
            assert tx.workspaces.exists(workspace.id)
        assert not _exists(database, workspace.id)

    def test_an_exception_rolls_back_every_write_of_the_unit(self, database):
        first, second = _workspace(), _workspace()
        with pytest.raises(Boom), database(write=True) as tx:
            tx.workspaces.add(first)
            tx.workspaces.add(second)
            raise Boom
        assert not _exists(database, first.id)
        assert not _exists(database, second.id)

    def test_the_connection_is_usable_again_after_a_rollback(self, database):
        workspace = _workspace()
        with pytest.raises(Boom), database(write=True) as tx:
            tx.workspaces.add(workspace)
            raise Boom
        with database(write=True) as tx:
            tx.workspaces.add(workspace)
            tx.commit()
        assert _exists(database, workspace.id)
