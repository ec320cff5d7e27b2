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

from domain import orm, services, triggers
from domain.model import Actor, Role
from domain.trigger_firing import tick
from domain.webhook_signature import sign
from scaicrew.app import build_runtime
from tests.integration.conftest import DEFINITION
from tests.support.processes import serve

DELIVERIES = 1000
SCHEDULES = 100
MINUTES = 10


def _published_member(database, actor: Actor) -> str:
    crew = services.create_crew(database, actor, "Load")
    member = services.create_member(
        database, actor, crew_id=crew.id, name="Loaded", definition=DEFINITION
    )
    services.publish_member(database, actor, member.id)
    return member.id


def _count(database, table, **where):
    with database() as tx:
        stmt = select(func.count()).select_from(table)
        for name, value in where.items():
            stmt = stmt.where(table.c[name] == value)
        return tx.repo._c.execute(stmt).scalar_one()


def _retire_runs(database, workspace_id: str) -> None:
    """Fail this test's queued runs. The session database is shared: left queued, a thousand
    runs would be worked through first by every later dispatcher (the contract seed's waits
    for its own runs behind them, and timed out on PostgreSQL)."""
    now = datetime.now(UTC)
    with database(write=True) as tx:
        tx.repo._c.execute(
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
    settings, database, make_actor, server
):
    actor = make_actor(Role.ADMIN)
    runtime = build_runtime(settings, database)
    created = triggers.create_trigger(
        runtime, actor, kind="webhook", member_id=_published_member(database, actor), name="Load"
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
def test_a_thousand_schedule_slots_fire_once_each(settings, database, make_actor):
    actor = make_actor(Role.ADMIN)
    runtime = build_runtime(settings, database)
    member_id = _published_member(database, actor)
    ids = [
        triggers.create_trigger(
            runtime, actor, kind="schedule", member_id=member_id, name=f"s{i}", cron="* * * * *"
        ).trigger.id
        for i in range(SCHEDULES)
    ]
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    fired = []
    with ThreadPoolExecutor(2) as pool:
        for minute in range(MINUTES):
            now = start + timedelta(minutes=minute, seconds=7)
            # Two schedulers tick the same instant.
            for firings in pool.map(lambda at: tick(runtime, at), [now, now]):
                fired += [f for f in firings if f.trigger_id in set(ids)]
    assert len(fired) == SCHEDULES * MINUTES
    assert len({(f.trigger_id, f.slot) for f in fired}) == len(fired)
    assert all(f.run_id for f in fired)
    assert _count(database, orm.runs, workspace_id=actor.workspace_id) == SCHEDULES * MINUTES
    with database(write=True) as tx:  # stop them firing in later tests' ticks
        tx.repo._c.execute(
            update(orm.triggers).where(orm.triggers.c.id.in_(ids)).values(enabled=False)
        )
        tx.commit()
    _retire_runs(database, actor.workspace_id)
