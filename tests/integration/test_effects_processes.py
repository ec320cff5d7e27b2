"""Effects are never silently repeated: a worker process killed (SIGKILL) in the middle of an
approved ``external_write`` call, a second worker process recovering the run, a real local
target counting the calls it receives."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from domain.kernel import Actor, Role
from domain.kernel.paging import PageRequest
from domain.members import Definition
from domain.runs import Approval, ApprovalFilter, Run
from domain.use_cases import UseCases
from tests.support.peers import Peer, Recorded, Reply, json_reply
from tests.support.processes import Process, environment
from tests.support.runs import NOTES, POSTER

DEADLINE = 30.0


class FirstPostHangs:
    """The target: counts every POST; the first one hangs (until the peer closes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.posts = 0

    def __call__(self, request: Recorded) -> Reply:
        with self._lock:
            self.posts += 1
            first = self.posts == 1
        return json_reply({"received": True}, delay=120 if first else 0)


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


def until(what: str, check: Any) -> Any:
    deadline = time.monotonic() + DEADLINE
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def pending(use_cases: UseCases, actor: Actor, run_id: str) -> Approval | None:
    page = use_cases.runs.list_approvals(actor, PageRequest(), ApprovalFilter(run_id=run_id))
    return page.items[0] if page.items else None


def status(use_cases: UseCases, actor: Actor, run_id: str) -> Run:
    return use_cases.runs.get_run(actor, run_id)


def test_an_approved_write_cut_off_by_a_killed_worker_goes_back_to_a_human(
    settings, use_cases, make_tenant, tmp_path, processes
):
    target = FirstPostHangs()
    peer = Peer(target).start()
    try:
        tenant = make_tenant()
        actor = Actor(tenant.workspace_id, "user-admin", Role.ADMIN)
        crew = use_cases.members.create_crew(actor, "Effects crew")
        member = use_cases.members.create_member(
            actor, crew_id=crew.id, name="Poster", definition=Definition.from_json(POSTER)
        )
        use_cases.members.publish_member(actor, member.id)
        run_id = use_cases.runs.start_run(actor, member.id, {"url": peer.url("/hook")})[0].id

        env = environment(
            settings,
            worker_poll_seconds=0.1,
            run_lease_seconds=1,
            tool_http_allowlist="127.0.0.1",
            tool_http_timeout_seconds=60,
        )
        first = Process(["worker", "--threads", "1"], env, tmp_path / "first.log")
        processes.append(first)
        approval = until("the approval", lambda: pending(use_cases, actor, run_id))
        assert not approval.outcome_unknown
        use_cases.runs.approve_approval(actor, approval.id)
        peer.wait_for(1, timeout=DEADLINE)  # the approved POST is in flight
        first.kill()  # SIGKILL mid-call: the target got the call, the run has no result

        second = Process(["worker", "--threads", "1"], env, tmp_path / "second.log")
        processes.append(second)
        again = until("a second approval", lambda: pending(use_cases, actor, run_id))
        assert again.id != approval.id
        assert again.outcome_unknown
        assert (again.tool, again.call_id) == (approval.tool, approval.call_id)
        assert status(use_cases, actor, run_id).status.value == "waiting_approval"
        time.sleep(1.5)  # more than a lease: nothing repeats the call behind the human's back
        assert target.posts == 1

        use_cases.runs.approve_approval(actor, again.id)  # the human decides to repeat it
        done = until(
            "the run to finish",
            lambda: (r := status(use_cases, actor, run_id)).status.finished and r,
        )
        assert done.status.value == "succeeded", done.error
        posts = peer.received("POST", "/hook")
        assert len(posts) == 2  # one per approval
        keys = {p.headers.get("idempotency-key") for p in posts}
        assert len(keys) == 1 and None not in keys  # the same stable id: targets can de-dup

        timeline, _ = use_cases.runs.list_run_events(actor, run_id, 0, 100)
        types = [e.type for e in timeline]
        assert types.count("tool.started") == 2
        assert types.count("tool.succeeded") == 1
        assert types.count("run.recovered") == 1
        for process in processes:
            assert "Traceback" not in process.output(), process.output()
    finally:
        peer.close()


@pytest.mark.postgres
def test_a_worker_rides_out_a_database_outage(
    settings, use_cases, make_tenant, tmp_path, processes
):
    """A ``scaicrew worker`` reaches PostgreSQL through a proxy that is cut for 20 seconds
    while runs execute, then restored: every run ends ``succeeded`` (nothing lost, nothing
    stuck), without restarting the worker; a ``scaicrew scheduler`` on the same proxy stays up."""
    from sqlalchemy.engine import make_url

    from tests.support.tcp_proxy import TcpProxy

    url = make_url(settings.database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("needs TEST_DATABASE_URL (PostgreSQL)")
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    try:
        tenant = make_tenant()
        actor = Actor(tenant.workspace_id, "user-admin", Role.ADMIN)
        crew = use_cases.members.create_crew(actor, "Outage crew")
        member = use_cases.members.create_member(
            actor, crew_id=crew.id, name="Busy", definition=Definition.from_json(NOTES)
        )
        use_cases.members.publish_member(actor, member.id)
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        env = environment(
            settings,
            worker_poll_seconds=0.1,
            run_lease_seconds=1,
            run_max_attempts=10,
            database_url=proxied,
        )
        worker = Process(["worker", "--threads", "2"], env, tmp_path / "worker.log")
        processes.append(worker)
        worker.wait_for_output("worker started")
        # The scheduler rides it out too: it ticks through the outage and stays up.
        scheduler = Process(["scheduler", "--interval", "0.5"], env, tmp_path / "scheduler.log")
        processes.append(scheduler)
        scheduler.wait_for_output("scheduler started")
        # More runs than the worker drains while they are started (it did 20 within 0.3 s):
        # the outage comes with some of them mid-way.
        run_ids = [use_cases.runs.start_run(actor, member.id, {"n": n})[0].id for n in range(200)]
        proxy.cut()
        cut_short = [r for r in run_ids if not use_cases.runs.get_run(actor, r).status.finished]
        assert cut_short, "the outage came after the work: nothing to ride out"
        time.sleep(20)  # the outage: as long as the (a stopped cluster for 20 s)
        proxy.restore()

        def finished() -> list[Run] | None:
            runs = [use_cases.runs.get_run(actor, run_id) for run_id in run_ids]
            return runs if all(r.status.finished for r in runs) else None

        runs = until("every run to finish after the outage", finished)
        assert [r.status.value for r in runs] == ["succeeded"] * 200, [r.error for r in runs]
        assert worker.alive(), worker.output()
        assert scheduler.alive(), scheduler.output()
    finally:
        proxy.close()
