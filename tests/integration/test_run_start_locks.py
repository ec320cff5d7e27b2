"""Starting runs of one member on PostgreSQL: the member's row is share-locked, so starts go
on together while a change of the member (archive, publish) waits for them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from domain.database import Database
from domain.kernel import Actor
from domain.members import Definition, EffectClass, ToolSpec, runnable
from domain.runs import RunStatus
from domain.use_cases import UseCases

NOTES = Definition(objective="Keep notes.", tools=(ToolSpec("notes_write", EffectClass.INTERNAL),))
WAIT = 10.0


@pytest.fixture
def member_id(database: Database, use_cases: UseCases, actor: Actor) -> str:
    if database.is_sqlite:
        pytest.skip("row locks: needs TEST_DATABASE_URL (PostgreSQL)")
    members = use_cases.members
    crew = members.create_crew(actor, f"Locks {time.monotonic_ns()}")
    member = members.create_member(
        actor, crew_id=crew.id, name=f"Starter {time.monotonic_ns()}", definition=NOTES
    )
    members.publish_member(actor, member.id)
    return member.id


def test_a_start_does_not_wait_for_another_start_of_the_same_member(
    database: Database, use_cases: UseCases, actor: Actor, member_id: str
) -> None:
    with ThreadPoolExecutor(1) as pool, database(write=True) as tx:  # tx ends first
        assert runnable(tx, actor.workspace_id, member_id, dry_run=False) is not None
        # This transaction is a start in progress; another start of the member goes through.
        other = pool.submit(use_cases.runs.start_run, actor, member_id, {})
        run, replayed = other.result(timeout=WAIT)
    assert run.status is RunStatus.QUEUED and not replayed


def test_archiving_waits_for_a_start_in_progress(
    database: Database, use_cases: UseCases, actor: Actor, member_id: str
) -> None:
    with ThreadPoolExecutor(1) as pool:
        with database(write=True) as tx:
            assert runnable(tx, actor.workspace_id, member_id, dry_run=False) is not None
            archived = pool.submit(use_cases.members.archive_member, actor, member_id)
            time.sleep(0.3)
            assert not archived.done()  # blocked on the start's share lock
        assert archived.result(timeout=WAIT).archived
