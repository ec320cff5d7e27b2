"""Subscription deliveries across real processes: a server killed (SIGKILL) mid-delivery loses
nothing; the next one sends again what was in flight (at least once), then the rest, in order."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from domain.kernel import Role
from domain.triggers.webhook_signature import refusal
from tests.support.peers import Peer, Recorded, Reply
from tests.support.processes import Process, serve


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


def test_a_delivery_in_flight_when_its_server_is_killed_is_sent_again_then_the_rest(
    settings, tenant, tmp_path, processes
):
    seen = 0
    lock = threading.Lock()

    def route(_request: Recorded) -> Reply:
        nonlocal seen
        with lock:
            seen += 1
            first = seen == 1
        return Reply(204, delay=120 if first else 0.0)  # the first POST hangs

    receiver = Peer(route).start()
    try:
        overrides = {
            "worker_threads": 0,
            "subscription_delivery_threads": 1,
            "subscription_poll_seconds": 0.05,
            "subscription_lease_seconds": 1,
            "subscription_timeout_seconds": 2,
            "subscription_allowed_hosts": f"127.0.0.1:{receiver.port}",
        }
        first, base_url = serve(settings, tmp_path / "first.log", **overrides)
        processes.append(first)
        h = tenant.headers(Role.ADMIN)
        with httpx.Client(base_url=base_url, timeout=10) as api:
            body = {"url": receiver.url("/hook"), "event_types": ["run.failed"]}
            created = api.post("/v1/subscriptions", json=body, headers=h).json()
            sent = [
                api.post(f"/v1/subscriptions/{created['id']}/test", headers=h).json()["id"]
                for _ in range(5)
            ]
            receiver.wait_for(1, "/hook", timeout=30)  # the first delivery is in flight
        first.kill()

        second, base_url = serve(settings, tmp_path / "second.log", **overrides)
        processes.append(second)
        got = receiver.wait_for(6, "/hook", timeout=30)
        time.sleep(0.5)
        got = receiver.received(prefix="/hook")
        ids = []
        for request in got:
            stamp = request.headers["x-scaicrew-timestamp"]
            signature = request.headers["x-scaicrew-signature"]
            now = datetime.now(UTC)
            assert refusal(created["secret"], stamp, signature, request.body, now) is None
            ids.append(json.loads(request.body)["id"])
        assert ids == [sent[0], *sent]  # the one in flight again, then all, in order
        with httpx.Client(base_url=base_url, timeout=10) as api:
            rows = api.get(f"/v1/subscriptions/{created['id']}/deliveries", headers=h).json()
        assert {row["status"] for row in rows["items"]} == {"succeeded"}
        for process in processes:
            assert "Traceback" not in process.output(), process.output()
    finally:
        receiver.close()
