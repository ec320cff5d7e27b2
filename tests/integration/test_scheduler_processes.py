"""Two scheduler processes on one PostgreSQL race for the same due slots: each fires once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from domain.database import Database
from domain.kernel import Actor, Role
from domain.persistence import tables as orm
from domain.use_cases import UseCases
from scaicrew.app import build_use_cases
from scaicrew.migrate import upgrade
from scaicrew.settings import Settings
from tests.integration.conftest import DEFINITION, fresh_workspace_id
from tests.support.databases import create_postgres, drop_postgres
from tests.support.processes import ROOT, environment

TRIGGERS = 40
ROUNDS = 2


def _schedules(use_cases: UseCases, actor: Actor, count: int) -> list[str]:
    members = use_cases.members
    crew = members.create_crew(actor, "Scheduled")
    member = members.create_member(
        actor, crew_id=crew.id, name="Every minute", definition=DEFINITION
    )
    members.publish_member(actor, member.id)
    ids = [
        use_cases.triggers.create_trigger(
            actor, kind="schedule", member_id=member.id, name=f"t{i}", cron="* * * * *"
        ).trigger.id
        for i in range(count)
    ]
    # Created "an hour ago", so the current minute's slot is due right away.
    with use_cases.database(write=True) as tx:
        tx.connection.execute(  # test set-up: back-date the triggers
            update(orm.triggers)
            .where(orm.triggers.c.id.in_(ids))
            .values(active_since=datetime.now(UTC) - timedelta(hours=1))
        )
        tx.commit()
    return ids


def _scheduler_once(settings: Settings) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "scaicrew.cli", "scheduler", "--once"],
        cwd=ROOT,
        env=environment(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def own_database(settings: Settings, database: Database) -> Iterator[tuple[Settings, UseCases]]:
    """A database of this test's own (settings pointing at it, and use cases over it). A
    ``scheduler --once`` fires every due schedule of its database: in the session's, other
    tests' schedules (left enabled, due by now) would fire too and be counted with these."""
    if database.is_sqlite:
        pytest.skip("needs TEST_DATABASE_URL (PostgreSQL): two processes on one database")
    server = os.environ["TEST_DATABASE_URL"]
    url, name = create_postgres(server, "schedulers")
    upgrade(url)
    own = Database(url)
    own_settings = settings.with_changes(database_url=url)
    try:
        yield own_settings, build_use_cases(own_settings, own)
    finally:
        own.dispose()
        drop_postgres(server, name)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_scheduler_processes_fire_each_slot_exactly_once(own_database):
    settings, use_cases = own_database
    actor = Actor(fresh_workspace_id(), "integration-user", Role.ADMIN)
    use_cases.workspaces.ensure_member(actor.workspace_id, actor.subject, actor.role)
    ids = _schedules(use_cases, actor, TRIGGERS)
    fired = 0
    for _ in range(ROUNDS):
        pair = [_scheduler_once(settings), _scheduler_once(settings)]
        outputs = [p.communicate(timeout=60)[0] for p in pair]
        for process, output in zip(pair, outputs, strict=True):
            assert process.returncode == 0, output
            assert "Traceback" not in output, output
            fired += int(output.split("fired ")[1].split(" ")[0])

    s, r = orm.schedule_slots, orm.runs
    with use_cases.database() as tx:
        conn = tx.connection
        slots = conn.execute(
            select(s.c.trigger_id, s.c.slot, s.c.run_id).where(s.c.trigger_id.in_(ids))
        ).all()
        runs = conn.execute(
            select(func.count()).select_from(r).where(r.c.workspace_id == actor.workspace_id)
        ).scalar_one()
    # Every trigger fired the current minute (and the next, if a round crossed into it) ...
    assert {trigger_id for trigger_id, _, _ in slots} == set(ids)
    assert len(slots) in (TRIGGERS, 2 * TRIGGERS)
    # ... each slot once, by exactly one of the processes, with exactly one run.
    assert fired == len(slots) == runs
    assert len({run_id for _, _, run_id in slots}) == len(slots)
