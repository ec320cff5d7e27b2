"""The live stream across real server processes sharing one database.

On PostgreSQL an event committed by one process reaches the subscribers of another through
LISTEN/NOTIFY at once; on SQLite (no notifications) each process polls the event log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.kernel import Role
from tests.support.processes import Process, launch, wait_until_serving
from tests.support.runs import NOTES
from tests.support.sse import StreamReader, run_statuses


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


@pytest.mark.postgres
def test_a_run_started_through_one_server_is_seen_by_a_subscriber_of_another(
    settings, database, tenant, tmp_path, processes
):
    if database.is_sqlite:
        pytest.skip("needs TEST_DATABASE_URL (PostgreSQL): LISTEN/NOTIFY across processes")
    follow_a_run_across_servers(settings, tenant, tmp_path, processes)


def test_on_sqlite_the_other_server_polls_the_event_log(
    settings, database, tenant, tmp_path, processes
):
    if not database.is_sqlite:
        pytest.skip("the PostgreSQL variant above covers LISTEN/NOTIFY")
    follow_a_run_across_servers(settings, tenant, tmp_path, processes, stream_poll_seconds=0.2)


def follow_a_run_across_servers(
    settings: Any, tenant: Any, tmp_path: Path, processes: list[Process], **overrides: Any
) -> None:
    first, first_url = launch(settings, tmp_path / "first.log", worker_threads=1, **overrides)
    processes.append(first)
    # The second process executes nothing itself: every event it streams comes from the first.
    second, second_url = launch(settings, tmp_path / "second.log", worker_threads=0, **overrides)
    processes.append(second)
    wait_until_serving(first, first_url)
    wait_until_serving(second, second_url)
    h = tenant.headers(Role.ADMIN)
    with httpx.Client(base_url=first_url, timeout=10) as api:
        crew = api.post("/v1/crews", json={"name": "Stream crew"}, headers=h).json()
        member = api.post(
            "/v1/members",
            json={"crew_id": crew["id"], "name": "Streamer", "definition": NOTES},
            headers=h,
        ).json()
        assert api.post(f"/v1/members/{member['id']}/publish", headers=h).status_code == 200
        with StreamReader(second_url, tenant.headers(Role.VIEWER), {}) as reader:
            r = api.post(f"/v1/members/{member['id']}/runs", json={"input": {}}, headers=h)
            assert r.status_code == 202, r.text
            run_id = r.json()["id"]
            events = reader.wait_for(lambda e: "succeeded" in run_statuses(e, run_id))
    assert run_statuses(events, run_id) == ["queued", "running", "succeeded"]
    seqs = [e.seq for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    for process in processes:
        assert "Traceback" not in process.output(), process.output()
