"""Thousands of firings: nothing fired twice, nothing lost.

Webhooks: 1,000 distinct deliveries to a real server process, each sent twice at the same time
(2,000 requests from 8 threads): every one answers 202, each pair the same run, 1,000 runs in
all. Schedules: 100 triggers ticked over 10 minutes, every tick run twice: 1,000 slots, 1,000
runs.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from domain.kernel import Actor, Role
from domain.persistence import tables as orm
from domain.triggers import sign
from tests.integration.conftest import DEFINITION
from tests.support.domain import tick_at
from tests.support.processes import serve

DELIVERIES = 1000
SCHEDULES = 100
MINUTES = 10


def _published_member(use_cases, actor: Actor) -> str:
    members = use_cases.members
    crew = members.create_crew(actor, "Load")
    member = members.create_member(actor, crew_id=crew.id, name="Loaded", definition=DEFINITION)
    members.publish_member(actor, member.id)
    return member.id


def _count(database, table, **where):
    with database() as tx:
        stmt = select(func.count()).select_from(table)
        for name, value in where.items():
            stmt = stmt.where(table.c[name] == value)
        return tx.connection.execute(stmt).scalar_one()


def _retire_runs(database, workspace_id: str) -> None:
    """Fail this test's queued runs. The session database is shared: left queued, a thousand
    runs would be worked through first by every later dispatcher (the contract seed's waits
    for its own runs behind them, and timed out on PostgreSQL)."""
    now = datetime.now(UTC)
    with database(write=True) as tx:
        tx.connection.execute(
            update(orm.runs)
            .where(orm.runs.c.workspace_id == workspace_id, orm.runs.c.status == "queued")
            .values(
                status="failed",
                error={"code": "TestCleanup", "message": "retired by the load test"},
                finished_at=now,
                updated_at=now,
            )
        )
        tx.commit()


@pytest.fixture
def server(settings, tmp_path):
    process, base_url = serve(
        settings, tmp_path / "server.log", worker_threads=0, scheduler_enabled="false"
    )
    yield base_url
    process.stop()
    assert "Traceback" not in process.output(), process.output()


@pytest.mark.slow
def test_two_thousand_webhook_deliveries_start_exactly_one_run_each(
    use_cases, database, make_actor, server
):
    actor = make_actor(Role.ADMIN)
    created = use_cases.triggers.create_trigger(
        actor, kind="webhook", member_id=_published_member(use_cases, actor), name="Load"
    )
    secret, url = created.secret, f"{server}/v1/webhooks/{created.trigger.id}"
    assert secret is not None

    def send(client: httpx.Client, n: int) -> tuple[int, int, str, bool]:
        raw = json.dumps({"event": n}).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-ScaiCrew-Timestamp": stamp,
            "X-ScaiCrew-Signature": sign(secret, stamp, raw),
        }
        r = client.post(url, content=raw, headers=headers)
        assert r.status_code == 202, r.text
        return n, r.status_code, r.json()["run_id"], r.json()["replayed"]

    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(8) as pool:
        # Each event twice, back to back: the copies race each other through ingress.
        answers = list(pool.map(lambda n: send(client, n // 2), range(2 * DELIVERIES)))

    runs: dict[int, set[str]] = {}
    for n, _, run_id, _ in answers:
        runs.setdefault(n, set()).add(run_id)
    assert len(runs) == DELIVERIES
    assert all(len(ids) == 1 for ids in runs.values()), "a delivery started two runs"
    assert sum(1 for *_, replayed in answers if replayed) == DELIVERIES
    assert len({next(iter(ids)) for ids in runs.values()}) == DELIVERIES
    assert _count(database, orm.runs, workspace_id=actor.workspace_id) == DELIVERIES
    log = orm.trigger_invocations
    assert _count(database, log, trigger_id=created.trigger.id, outcome="accepted") == DELIVERIES
    assert _count(database, log, trigger_id=created.trigger.id, outcome="replayed") == DELIVERIES
    _retire_runs(database, actor.workspace_id)


@pytest.mark.slow
def test_a_thousand_schedule_slots_fire_once_each(use_cases, database, make_actor):
    actor = make_actor(Role.ADMIN)
    member_id = _published_member(use_cases, actor)
    ids = [
        use_cases.triggers.create_trigger(
            actor, kind="schedule", member_id=member_id, name=f"s{i}", cron="* * * * *"
        ).trigger.id
        for i in range(SCHEDULES)
    ]
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    fired = []
    with ThreadPoolExecutor(2) as pool:
        for minute in range(MINUTES):
            now = start + timedelta(minutes=minute, seconds=7)
            # Two schedulers tick the same instant.
            for firings in pool.map(lambda at: tick_at(use_cases, at), [now, now]):
                fired += [f for f in firings if f.trigger_id in set(ids)]
    assert len(fired) == SCHEDULES * MINUTES
    assert len({(f.trigger_id, f.slot) for f in fired}) == len(fired)
    assert all(f.run_id for f in fired)
    assert _count(database, orm.runs, workspace_id=actor.workspace_id) == SCHEDULES * MINUTES
    with database(write=True) as tx:  # stop them firing in later tests' ticks
        tx.connection.execute(
            update(orm.triggers).where(orm.triggers.c.id.in_(ids)).values(enabled=False)
        )
        tx.commit()
    _retire_runs(database, actor.workspace_id)
