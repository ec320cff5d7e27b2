"""What a worker's round trips cost on the database (ADR 0061).

- A read ends with COMMIT, and an idle worker's empty claim commits too: on PostgreSQL a
  ROLLBACK makes psycopg forget every statement it prepared on the connection, so before this
  no statement of the run path was ever executed prepared.
- The claim reads the partial index of unfinished runs: on PostgreSQL a full index on status
  pointed mostly at dead row versions under load (2-4 ms per claim between vacuums).
- A pooled PostgreSQL connection is pinged only when it sat idle (not on every checkout).
- A run's next step starts from the run as the previous step's commit left it: no read
  transaction between a worker's own steps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from domain.database import Database
from domain.kernel import Actor, Role
from domain.members import Definition, EffectClass, ToolSpec
from domain.persistence import engine as engine_module
from domain.persistence.engine import WRITE_OPTION
from domain.runs import RunFilter, RunStatus
from scaicrew.app import build_use_cases
from tests.support.domain import dispatcher
from tests.support.plans import plan_of


class Boom(Exception):
    pass


@pytest.fixture
def own(database_url: str) -> Iterator[Database]:
    """A Database of the test's own over the session database: a pool of one connection,
    and engine listeners that no other test sees."""
    db = Database(database_url, pool_size=1)
    yield db
    db.dispose()


def _engines(db: Database) -> list[Any]:
    """Every engine a unit of work of ``db`` may connect through (SQLite files: the writers'
    own one, ADR 0066)."""
    return [db.engine] + ([db.writer_engine] if db.writer_engine is not None else [])


def _endings(db: Database) -> list[str]:
    seen: list[str] = []
    for engine in _engines(db):
        event.listen(engine, "commit", lambda _conn: seen.append("commit"))
        event.listen(engine, "rollback", lambda _conn: seen.append("rollback"))
    return seen


class TestHowATransactionEnds:
    def test_a_read_commits(self, own, tenant):
        endings = _endings(own)
        with own() as tx:
            assert tx.workspaces.exists(tenant.workspace_id)
        assert endings == ["commit"]

    def test_a_read_that_raises_rolls_back(self, own, tenant):
        endings = _endings(own)
        with pytest.raises(Boom), own() as tx:
            tx.workspaces.exists(tenant.workspace_id)
            raise Boom
        assert endings == ["rollback"]

    def test_a_write_left_without_commit_still_rolls_back(self, own, tenant):
        endings = _endings(own)
        with own(write=True) as tx:
            tx.workspaces.exists(tenant.workspace_id)
        assert endings == ["rollback"]

    def test_an_empty_claim_commits(self, isolated):
        db = isolated.database
        endings = _endings(db)
        assert dispatcher(db, "idle-worker").claim() is None
        assert endings == ["commit"]


def test_a_worker_reads_nothing_between_its_own_steps(isolated):
    """The claim, the reply that queues a tool call, the call's result with the note the tool
    writes (ADR 0068: they were two) and the final reply: four writing transactions, and no
    read in between (there were three: one before each step)."""
    db = isolated.database
    actor = Actor(isolated.tenant.workspace_id, "user-admin", Role.ADMIN)
    use_cases = build_use_cases(isolated.settings, db)
    members = use_cases.members
    crew = members.create_crew(actor, "Notes crew")
    notes = Definition(
        objective="Keep notes.", tools=(ToolSpec("notes_write", EffectClass.INTERNAL),)
    )
    member = members.create_member(actor, crew_id=crew.id, name="Noter", definition=notes)
    members.publish_member(actor, member.id)
    run, _ = use_cases.runs.start_run(actor, member.id, {})
    began: list[str] = []

    def on_begin(conn: Any) -> None:
        began.append("write" if conn.get_execution_options().get(WRITE_OPTION) else "read")

    for engine in _engines(db):
        event.listen(engine, "begin", on_begin)
    try:
        assert dispatcher(db, "worker").run_next()
    finally:
        for engine in _engines(db):
            event.remove(engine, "begin", on_begin)
    with db() as tx:
        finished = tx.runs.get(None, run.id)
    assert finished is not None and finished.status is RunStatus.SUCCEEDED
    assert began == ["write"] * 4, began


def test_prepared_statements_outlive_reads_and_empty_claims(isolated):
    """psycopg prepares a statement on its sixth execution on a connection; a ROLLBACK on that
    connection drops them all (DEALLOCATE ALL)."""
    if isolated.database.is_sqlite:
        pytest.skip("prepared statements are psycopg's (PostgreSQL)")
    db = Database(isolated.database.url, pool_size=1)
    try:
        for _ in range(6):
            with db() as tx:
                assert tx.workspaces.exists(isolated.tenant.workspace_id)
        assert _prepared(db) > 0
        assert dispatcher(db, "idle-worker").claim() is None
        assert _prepared(db) > 0
    finally:
        db.dispose()


def _prepared(db: Database) -> int:
    with db() as tx:
        return int(
            tx.connection.exec_driver_sql(
                "SELECT count(*) FROM pg_prepared_statements"
            ).scalar_one()
        )


def test_the_claim_reads_the_index_of_unfinished_runs(database):
    with database() as tx:
        plan = plan_of(tx, lambda: tx.runs.claimable(datetime.now(UTC)), "runs")
    assert "ix_runs_unfinished" in plan, plan


class TestPingAfterIdle:
    """PostgreSQL only: a pooled connection whose server process is gone."""

    def test_an_idle_connection_is_pinged_and_a_dead_one_replaced_unseen(
        self, database_url, monkeypatch
    ):
        with _server_gone(database_url, monkeypatch, ping_after_idle=0.0) as (db, first):
            assert _backend(db) != first  # the ping found it dead: a new connection answered

    def test_a_connection_used_a_moment_ago_is_trusted_and_a_dead_one_fails_once(
        self, database_url, monkeypatch
    ):
        with _server_gone(database_url, monkeypatch, ping_after_idle=3600.0) as (db, first):
            with pytest.raises(OperationalError) as raised:
                _backend(db)
            assert raised.value.connection_invalidated
            assert _backend(db) != first  # the disconnect emptied the pool

    def test_a_dead_connection_met_by_a_driver_statement_is_thrown_away_with_the_pool(
        self, database_url, monkeypatch
    ):
        """The busiest statements run on psycopg's cursor (ADR 0069): a disconnect there is
        handled as SQLAlchemy's own path handles it."""
        with _server_gone(database_url, monkeypatch, ping_after_idle=3600.0) as (db, first):
            with pytest.raises(OperationalError) as raised, db() as tx:
                tx.runs.ownership("run_none")  # a driver statement (RunRepository._hot)
            assert raised.value.connection_invalidated
            assert _backend(db) != first  # the disconnect emptied the pool


@contextmanager
def _server_gone(
    url: str, monkeypatch: pytest.MonkeyPatch, *, ping_after_idle: float
) -> Iterator[tuple[Database, int]]:
    """A pool of one connection that was used once, whose server process was then stopped;
    with it, that process's id."""
    if url.startswith("sqlite"):
        pytest.skip("pooled server connections are PostgreSQL's")
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", ping_after_idle)
    db = Database(url, pool_size=1)
    try:
        first = _backend(db)
        _terminate(url, first)
        yield db, first
    finally:
        db.dispose()


def _backend(db: Database) -> int:
    with db() as tx:
        return int(tx.connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(url: str, pid: int) -> None:
    """Stop the server process of a pooled connection, and wait until it is gone."""
    other = Database(url)
    try:
        with other() as tx:
            tx.connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        deadline = time.monotonic() + 10
        while True:
            with other() as tx:
                alive = tx.connection.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                ).scalar_one()
            if not alive:
                return
            assert time.monotonic() < deadline, "the backend did not stop"
            time.sleep(0.01)
    finally:
        other.dispose()


def test_a_listing_by_status_reads_the_index_on_status(database):
    """``GET /v1/runs?status=running&created_after=...`` reads the runs of that status (from
    that time) only, not every run of the workspace (ADR 0073). SQLite's plan: PostgreSQL's
    depends on the table's statistics (on an empty table it walks the workspace's index
    backwards; with 5,000 runs it took this index: 4.4 ms -> 0.04 ms, ADR 0073)."""
    if not database.is_sqlite:
        pytest.skip("the query plan asserted is SQLite's")
    where = RunFilter(status=RunStatus.RUNNING, created_after=datetime.now(UTC))
    with database() as tx:
        plan = plan_of(tx, lambda: tx.runs.list_runs("wsp_none", None, 50, where), "runs")
    assert "ix_runs_workspace_id_status_created_at" in plan, plan
