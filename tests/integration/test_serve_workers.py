"""``scaicrew serve --workers N``: N API processes on PostgreSQL, refused on SQLite (ADR 0050)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from domain.database import Database
from scaicrew.cli import serve_refusal
from scaicrew.migrate import upgrade
from scaicrew.settings import Settings
from tests.support.databases import create_postgres, drop_postgres
from tests.support.processes import ROOT, Process, environment, free_port


def test_serve_workers_on_sqlite_is_refused_with_the_reason(settings: Settings) -> None:
    sqlite = settings.with_changes(database_url="sqlite:///./never-created.db")
    done = subprocess.run(
        [sys.executable, "-m", "scaicrew.cli", "serve", "--no-migrate", "--workers", "2"],
        cwd=ROOT,
        env=environment(sqlite),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--workers 2 needs PostgreSQL" in done.stderr
    assert not (ROOT / "never-created.db").exists()


def test_serve_refusals(settings: Settings) -> None:
    sqlite = settings.with_changes(database_url="sqlite:///x.db")
    postgres = settings.with_changes(database_url="postgresql+psycopg://u@127.0.0.1/db")
    assert serve_refusal(sqlite, 1) is None  # one process: SQLite is fine
    assert "needs PostgreSQL" in (serve_refusal(sqlite, 2) or "")
    assert serve_refusal(postgres, 4) is None
    assert "at least 1" in (serve_refusal(postgres, 0) or "")


@pytest.fixture
def own_postgres(settings: Settings, database: Database) -> Iterator[Settings]:
    if database.is_sqlite:
        pytest.skip("needs TEST_DATABASE_URL (PostgreSQL)")
    server = os.environ["TEST_DATABASE_URL"]
    url, name = create_postgres(server, "workers")
    upgrade(url)
    try:
        yield settings.with_changes(database_url=url)
    finally:
        drop_postgres(server, name)


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.add(int(entry.name))
    return found


def _pinned(pids: set[int]) -> set[int]:
    """The CPUs of those of ``pids`` that are pinned to exactly one."""
    single = set()
    for pid in pids:
        try:
            allowed = os.sched_getaffinity(pid)
        except OSError:
            continue
        if len(allowed) == 1:
            single |= allowed
    return single


def _healthy(base_url: str) -> bool:
    try:
        return httpx.get(base_url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
@pytest.mark.postgres
def test_serve_workers_runs_that_many_api_processes(own_postgres: Settings, tmp_path) -> None:
    port = free_port()
    cpus = sorted(os.sched_getaffinity(0))[:2]
    affinity = ",".join(map(str, cpus)) if len(cpus) == 2 else ""
    process = Process(
        ["serve", "--no-migrate", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        environment(own_postgres, cpu_affinity=affinity),
        tmp_path / "serve.log",
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        # Each process builds the whole app before it serves: slower than one server on a busy
        # machine, so this waits longer than ``wait_until_serving``.
        deadline = time.monotonic() + 150
        while not _healthy(base_url):
            assert process.alive(), process.output()
            assert time.monotonic() < deadline, f"never answered:\n{process.output()}"
            time.sleep(0.2)
        while len(_children(process.proc.pid) - {process.proc.pid}) < 2:
            assert time.monotonic() < deadline, process.output()
            time.sleep(0.2)
        if affinity:  # CPU_AFFINITY: each process pinned to a CPU of its own (ADR 0058)
            while _pinned(_children(process.proc.pid)) != set(cpus):
                assert time.monotonic() < deadline, process.output()
                time.sleep(0.2)
        # Both processes answer: many requests over fresh connections all succeed.
        for _ in range(20):
            assert httpx.get(base_url + "/health", timeout=10).status_code == 200
        unauthenticated = httpx.get(base_url + "/v1/crews", timeout=10)
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["content-type"].startswith("application/problem+json")
    finally:
        process.stop()
    assert "Traceback" not in process.output()
