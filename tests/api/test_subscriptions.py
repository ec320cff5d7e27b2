"""Event subscriptions (issue 16): CRUD, bad input, and signed deliveries to a real local
receiver that counts what it gets and verifies every signature."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from domain.kernel.actor import Role
from domain.subscriptions import DeliveryError
from domain.triggers.webhook_signature import refusal
from scaicrew.adapters.delivery_http import HttpDelivery
from tests.api.helpers import errors_of, missing_id
from tests.support.peers import Peer, Recorded, Reply
from tests.support.runs import (
    POSTER,
    app_client,
    approvals_of,
    published_member,
    run_to_end,
    start,
)


class Receiver:
    """Answers from a script (status codes, then 204 for ever); records every request."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.lock = threading.Lock()
        self.peer = Peer(self._route).start()

    def _route(self, _request: Recorded) -> Reply:
        with self.lock:
            return self.script.pop(0) if self.script else Reply(204)

    def url(self, path: str) -> str:
        return self.peer.url(path)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.peer.close()


@pytest.fixture(scope="module")
def api(settings: Any, receiver: Receiver) -> Iterator[httpx.Client]:
    with app_client(
        settings,
        subscription_allowed_hosts=f"127.0.0.1:{receiver.peer.port}",
        subscription_delivery_threads=1,
        subscription_poll_seconds=0.05,
        subscription_retry_base_seconds=0.05,
        subscription_timeout_seconds=2,
    ) as c:
        yield c


def subscribe(api: httpx.Client, tenant: Any, url: str, *types: str) -> dict[str, Any]:
    body = {"url": url, "event_types": list(types or ("run.succeeded",))}
    r = api.post("/v1/subscriptions", json=body, headers=tenant.headers())
    assert r.status_code == 201, r.text
    return dict(r.json())


def verified(request: Recorded, secret: str) -> dict[str, Any]:
    """The delivery's JSON body, after checking its signature as our webhook ingress does."""
    why = refusal(
        secret,
        request.headers["x-scaicrew-timestamp"],
        request.headers["x-scaicrew-signature"],
        request.body,
        datetime.now(UTC),
    )
    assert why is None, why
    body = dict(json.loads(request.body))
    assert request.headers["x-scaicrew-event-id"] == body["id"]
    return body


def deliveries(api: httpx.Client, tenant: Any, sub_id: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/subscriptions/{sub_id}/deliveries", headers=tenant.headers())
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


class TestCrud:
    def test_the_secret_is_shown_once_and_the_rest_reads_back(self, api, tenant, receiver):
        created = subscribe(api, tenant, receiver.url("/crud"), "run.failed", "run.failed")
        assert created["secret"].startswith("whsec_")
        assert created["event_types"] == ["run.failed"]
        assert created["enabled"] is True
        path = f"/v1/subscriptions/{created['id']}"
        got = api.get(path, headers=tenant.headers()).json()
        assert "secret" not in got and got["url"] == receiver.url("/crud")
        listed = api.get("/v1/subscriptions", headers=tenant.headers()).json()["items"]
        assert created["id"] in [s["id"] for s in listed]
        r = api.patch(
            path,
            json={"enabled": False, "event_types": ["approval.requested"]},
            headers=tenant.headers(),
        )
        assert r.status_code == 200, r.text
        assert r.json()["enabled"] is False
        assert r.json()["event_types"] == ["approval.requested"]
        assert api.delete(path, headers=tenant.headers()).status_code == 204
        assert api.get(path, headers=tenant.headers()).status_code == 404

    def test_only_admins_and_only_their_workspace(self, api, tenant, make_tenant, receiver):
        created = subscribe(api, tenant, receiver.url("/mine"))
        r = api.get("/v1/subscriptions", headers=tenant.headers(Role.AUTHOR))
        assert r.status_code == 403
        other = make_tenant()
        r = api.get(f"/v1/subscriptions/{created['id']}", headers=other.headers())
        assert r.status_code == 404
        r = api.post(f"/v1/subscriptions/{created['id']}/test", headers=other.headers())
        assert r.status_code == 404


class TestBadInput:
    @pytest.mark.parametrize("url", ["ftp://example.com/hook", "http://user:pw@example.com/x"])
    def test_a_non_http_url_is_400_naming_url(self, api, tenant, url):
        r = api.post(
            "/v1/subscriptions",
            json={"url": url, "event_types": ["run.failed"]},
            headers=tenant.headers(),
        )
        assert r.status_code == 400, r.text
        assert [e.get("pointer") for e in errors_of(r.json())] == ["/url"]

    @pytest.mark.parametrize(
        "url",
        [
            "https://[B69A]/hook",
            "http://127.0.0.1:9/not-listed",
            "http://localhost/hook",
            "http://10.1.2.3/hook",
        ],
    )
    def test_refused_hosts_are_409_naming_url_and_nothing_is_stored(self, api, make_tenant, url):
        tenant = make_tenant()
        r = api.post(
            "/v1/subscriptions",
            json={"url": url, "event_types": ["run.failed"]},
            headers=tenant.headers(),
        )
        assert r.status_code == 409, r.text
        assert r.json()["type"] == "/problems/subscription-url-refused"
        assert r.json()["error"]["details"]["pointer"] == "/url"
        assert api.get("/v1/subscriptions", headers=tenant.headers()).json()["items"] == []

    def test_unknown_event_types_are_400(self, api, tenant):
        r = api.post(
            "/v1/subscriptions",
            json={"url": "https://example.com/hook", "event_types": ["run.exploded"]},
            headers=tenant.headers(),
        )
        assert r.status_code == 400, r.text

    def test_unknown_delivery_is_404(self, api, tenant, receiver):
        created = subscribe(api, tenant, receiver.url("/x"))
        r = api.post(
            f"/v1/subscriptions/{created['id']}/deliveries/{missing_id('dlv')}/redeliver",
            headers=tenant.headers(),
        )
        assert r.status_code == 404


class TestDelivery:
    def test_a_ping_is_signed_like_webhook_ingress(self, api, tenant, receiver):
        created = subscribe(api, tenant, receiver.url("/ping"))
        r = api.post(f"/v1/subscriptions/{created['id']}/test", headers=tenant.headers())
        assert r.status_code == 202, r.text
        ping = r.json()
        [got] = receiver.peer.wait_for(1, "/ping")
        body = verified(got, created["secret"])
        assert body["type"] == "ping" and body["id"] == ping["id"]
        assert body["data"] == {"subscription_id": created["id"]}

    def test_a_finished_run_is_delivered_with_its_stream_event_id(self, api, tenant, receiver):
        created = subscribe(api, tenant, receiver.url("/runs"), "run.succeeded")
        member = published_member(api, tenant.headers())
        run = run_to_end(api, tenant.headers(), member["id"])
        assert run["status"] == "succeeded"
        [got] = receiver.peer.wait_for(1, "/runs")
        body = verified(got, created["secret"])
        assert body["type"] == "run.succeeded"
        assert body["data"]["run_id"] == run["id"]
        assert body["id"].isdigit()  # the event's sequence number, its id on /v1/stream
        [row] = _wait_delivered(api, tenant, created["id"], 1)
        assert row["event_id"] == body["id"] and row["response_code"] == 204
        assert row["attempts"] == 1 and row["next_attempt_at"] is None

    def test_an_approval_notice_carries_what_a_human_needs_to_decide(self, api, tenant, receiver):
        created = subscribe(api, tenant, receiver.url("/approvals"), "approval.requested")
        member = published_member(api, tenant.headers(), POSTER)
        run = start(api, tenant.headers(), member["id"], {"url": "http://127.0.0.1:9/"})
        [got] = receiver.peer.wait_for(1, "/approvals")
        body = verified(got, created["secret"])
        [approval] = approvals_of(api, tenant.headers(), run["id"])
        assert body["type"] == "approval.requested"
        data = body["data"]
        assert data["approval_id"] == approval["id"] and data["run_id"] == run["id"]
        assert data["member_id"] == member["id"] and data["tool"] == "http_post"
        assert data["effect_class"] == "external_write"
        assert data["arguments"] == approval["arguments"]
        assert data["expires_at"] == approval["expires_at"]
        assert body["links"]["approval"] == f"/v1/approvals/{approval['id']}"
        r = api.get(body["links"]["approval"], headers=tenant.headers())
        assert r.status_code == 200 and r.json()["status"] == "pending"

    def test_retries_keep_order_and_honour_retry_after(self, api, tenant, receiver):
        created = subscribe(api, tenant, receiver.url("/retry"))
        with receiver.lock:
            receiver.script[:] = [
                Reply(503),
                Reply(429, b"", "application/json"),
                Reply(204),
                Reply(204),
            ]
        sub = created["id"]
        first = api.post(f"/v1/subscriptions/{sub}/test", headers=tenant.headers()).json()
        second = api.post(f"/v1/subscriptions/{sub}/test", headers=tenant.headers()).json()
        got = receiver.peer.wait_for(4, "/retry")
        ids = [verified(g, created["secret"])["id"] for g in got]
        # The first is retried until it passes; the second waits for it (in order).
        assert ids == [first["id"], first["id"], first["id"], second["id"]]
        rows = _wait_delivered(api, tenant, sub, 2)
        by_id = {row["id"]: row for row in rows}
        assert by_id[first["id"]]["attempts"] == 3
        assert by_id[second["id"]]["attempts"] == 1

    def test_a_4xx_fails_at_once_and_redelivery_sends_the_same_event(self, api, tenant, receiver):
        created = subscribe(api, tenant, receiver.url("/gone"))
        with receiver.lock:
            receiver.script[:] = [Reply(410)]
        sub = created["id"]
        ping = api.post(f"/v1/subscriptions/{sub}/test", headers=tenant.headers()).json()
        receiver.peer.wait_for(1, "/gone")
        row = _wait_for(lambda: _status(api, tenant, sub, ping["id"]) == "failed")
        assert row
        r = api.post(
            f"/v1/subscriptions/{sub}/deliveries/{ping['id']}/redeliver", headers=tenant.headers()
        )
        assert r.status_code == 202, r.text
        again = r.json()
        assert again["event_id"] == ping["id"] and again["id"] != ping["id"]
        got = receiver.peer.wait_for(2, "/gone")
        assert verified(got[1], created["secret"])["id"] == ping["id"]

    def test_a_disabled_subscription_sends_nothing(self, api, tenant, receiver):
        created = subscribe(api, tenant, receiver.url("/off"))
        sub = created["id"]
        api.patch(f"/v1/subscriptions/{sub}", json={"enabled": False}, headers=tenant.headers())
        api.post(f"/v1/subscriptions/{sub}/test", headers=tenant.headers())
        time.sleep(0.5)
        assert receiver.peer.received(prefix="/off") == []
        api.patch(f"/v1/subscriptions/{sub}", json={"enabled": True}, headers=tenant.headers())
        receiver.peer.wait_for(1, "/off")


def test_two_delivery_workers_share_the_queue_without_duplicates(isolated, receiver):
    """Two apps (each with its delivery threads) over one database: every event is delivered
    exactly once when nobody crashes, and in order per subscription."""
    overrides = {
        "subscription_allowed_hosts": f"127.0.0.1:{receiver.peer.port}",
        "subscription_poll_seconds": 0.02,
        "subscription_delivery_threads": 2,
        "worker_threads": 0,
    }
    settings, tenant = isolated.settings, isolated.tenant
    with app_client(settings, **overrides) as one, app_client(settings, **overrides) as two:
        created = subscribe(one, tenant, receiver.url("/pair"))
        sent = []
        for index in range(20):
            client = one if index % 2 else two
            r = client.post(f"/v1/subscriptions/{created['id']}/test", headers=tenant.headers())
            sent.append(r.json()["id"])
        got = receiver.peer.wait_for(20, "/pair")
        time.sleep(0.3)
        got = receiver.peer.received(prefix="/pair")
        assert [verified(g, created["secret"])["id"] for g in got] == sent


def test_an_approval_that_expires_is_delivered_as_approval_expired(isolated, receiver):
    overrides = {
        "subscription_allowed_hosts": f"127.0.0.1:{receiver.peer.port}",
        "subscription_delivery_threads": 1,
        "subscription_poll_seconds": 0.05,
        "approval_timeout_seconds": 1,
        "run_sweep_seconds": 0.2,
    }
    # The timeout is the member's own too, whoever's settings claim the run.
    expiring = {**POSTER, "approval_timeout_seconds": 1}
    settings, tenant = isolated.settings, isolated.tenant
    with app_client(settings, **overrides) as api:
        created = subscribe(api, tenant, receiver.url("/expired"), "approval.expired")
        member = published_member(api, tenant.headers(), expiring)
        run = start(api, tenant.headers(), member["id"], {"url": "http://127.0.0.1:9/"})
        [got] = receiver.peer.wait_for(1, "/expired", timeout=90)
        body = verified(got, created["secret"])
        assert body["type"] == "approval.expired"
        assert body["data"]["run_id"] == run["id"] and body["data"]["status"] == "expired"


def test_a_subscription_failing_for_the_whole_window_is_disabled(isolated):
    """Every attempt answers 503 for the retry window: the delivery fails, the subscription is
    disabled, with an audit entry and a ``subscription.disabled`` event another one receives."""
    failing = Peer(lambda _r: Reply(503)).start()
    watcher = Peer(lambda _r: Reply(204)).start()
    overrides = {
        "subscription_allowed_hosts": f"127.0.0.1:{failing.port},127.0.0.1:{watcher.port}",
        "subscription_delivery_threads": 1,
        "subscription_poll_seconds": 0.05,
        "subscription_retry_base_seconds": 0.05,
        "subscription_retry_window_seconds": 1.5,
    }
    settings, tenant, database = isolated.settings, isolated.tenant, isolated.database
    try:
        with app_client(settings, **overrides) as api:
            watching = subscribe(api, tenant, watcher.url("/w"), "subscription.disabled")
            created = subscribe(api, tenant, failing.url("/f"), "run.failed")
            sub = created["id"]
            ping = api.post(f"/v1/subscriptions/{sub}/test", headers=tenant.headers()).json()
            [got] = watcher.wait_for(1, "/w", timeout=60)
            body = verified(got, watching["secret"])
            assert body["type"] == "subscription.disabled"
            assert body["data"]["subscription_id"] == sub
            assert (
                api.get(f"/v1/subscriptions/{sub}", headers=tenant.headers()).json()["enabled"]
                is False
            )
            assert _status(api, tenant, sub, ping["id"]) == "failed"
            assert failing.received(prefix="/f")  # (retries themselves: test_retries_keep_order)
        with database() as tx:
            entries = tx.audit.entries(tenant.workspace_id, sub)
        [disabled] = [e for e in entries if e.action == "subscription.disabled"]
        assert disabled.actor_kind == "system" and disabled.data["delivery_id"] == ping["id"]
    finally:
        failing.close()
        watcher.close()


def test_a_subscription_blocked_in_backoff_does_not_starve_the_others(isolated):
    """A newer delivery due behind an older one in backoff is not work: with one delivery
    thread, a later subscription's delivery still goes out (it once waited for ever, the
    blocked subscription claimed and given back without progress ahead of every other)."""
    peer = Peer(lambda r: Reply(503) if r.path == "/blocked" else Reply(204)).start()
    overrides = {
        "subscription_allowed_hosts": f"127.0.0.1:{peer.port}",
        "subscription_delivery_threads": 1,
        "subscription_poll_seconds": 0.05,
        "subscription_retry_base_seconds": 600,  # the first retry waits 5-10 minutes
    }
    settings, tenant = isolated.settings, isolated.tenant
    try:
        with app_client(settings, **overrides) as api:
            blocked = subscribe(api, tenant, peer.url("/blocked"), "run.failed")["id"]
            first = api.post(f"/v1/subscriptions/{blocked}/test", headers=tenant.headers())
            peer.wait_for(1, "/blocked", timeout=30)
            first_id = first.json()["id"]
            _wait_for(lambda: _delivery(api, tenant, blocked, first_id).get("attempts") == 1, 30)
            behind = api.post(f"/v1/subscriptions/{blocked}/test", headers=tenant.headers())
            assert behind.status_code == 202
            later = subscribe(api, tenant, peer.url("/later"), "run.failed")
            ping = api.post(f"/v1/subscriptions/{later['id']}/test", headers=tenant.headers())
            [got] = peer.wait_for(1, "/later", timeout=30)
            assert verified(got, later["secret"])["id"] == ping.json()["id"]
            assert _status(api, tenant, blocked, behind.json()["id"]) == "pending"
            assert len(peer.received(prefix="/blocked")) == 1  # in order: nothing overtook
    finally:
        peer.close()


def test_a_subscription_whose_secret_cannot_be_opened_fails_its_attempts_visibly(isolated):
    """The keys changed without the old one: nothing can be signed, so nothing is sent; each
    due delivery counts a failed attempt saying why, and the window disables the
    subscription like a target that never answers."""
    peer = Peer(lambda _r: Reply(204)).start()
    overrides = {
        "subscription_allowed_hosts": f"127.0.0.1:{peer.port}",
        "subscription_poll_seconds": 0.05,
        "subscription_retry_base_seconds": 0.05,
        "subscription_retry_window_seconds": 0.5,
    }
    settings, tenant = isolated.settings, isolated.tenant
    try:
        old_key = "the-old-key-" + "o" * 32
        with app_client(settings, trigger_secret_key=old_key, **overrides) as api:
            sub = subscribe(api, tenant, peer.url("/s"), "run.failed")["id"]
        with app_client(
            settings,
            trigger_secret_key="a-new-key-" + "n" * 32,
            subscription_delivery_threads=1,
            **overrides,
        ) as api:
            ping = api.post(f"/v1/subscriptions/{sub}/test", headers=tenant.headers())
            delivery = ping.json()["id"]
            _wait_for(lambda: _status(api, tenant, sub, delivery) == "failed", 30)
            row = _delivery(api, tenant, sub, delivery)
            assert "signing secret cannot be opened" in row["error"]
            assert row["attempts"] >= 1 and row["response_code"] is None
            got = api.get(f"/v1/subscriptions/{sub}", headers=tenant.headers()).json()
            assert got["enabled"] is False
        assert peer.received(prefix="/s") == []
    finally:
        peer.close()


def test_while_nobody_subscribes_committed_events_do_not_wake_the_delivery_threads(isolated):
    """Each committed event woke the delivery threads for a query: 7% of a busy run server's
    CPU with no subscription at all. With none enabled, only the poll looks."""
    from sqlalchemy import event

    from domain.kernel import Signal
    from scaicrew.app import create_app

    app = create_app(
        isolated.settings.with_changes(
            subscription_delivery_threads=1, subscription_poll_seconds=30
        )
    )
    use_cases = app.context.use_cases
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM subscriptions" in statement:
            statements.append(statement)

    database = use_cases.database
    for engine in (database.engine, database.writer_engine):  # writer: SQLite (ADR 0066)
        if engine is not None:
            event.listen(engine, "before_cursor_execute", seen)
    with app.test_client():
        # The first idle step looks for work and whether anyone subscribes; a wake-up that
        # came before it may still run one more step: wait until all is quiet.
        _wait_for(lambda: bool(statements))
        looked = -1
        while looked != len(statements):
            looked = len(statements)
            time.sleep(0.5)
        signal = Signal(isolated.tenant.workspace_id, "run.changed", {"status": "running"})
        use_cases.signals.publish([signal] * 50)
        time.sleep(0.3)
        assert len(statements) == looked


def test_no_redirect_is_followed_and_the_answer_read_is_bounded():
    def route(request: Recorded) -> Reply:
        if request.path == "/moved":
            return Reply(307, b"", "text/plain")
        return Reply(200, b"x" * 1_000_000, "text/plain")

    peer = Peer(route).start()
    try:
        port = HttpDelivery()
        assert port.post(peer.url("/moved"), {}, b"{}", 2).status == 307
        assert port.post(peer.url("/big"), {}, b"{}", 2).status == 200
        assert [r.path for r in peer.requests] == ["/moved", "/big"]
    finally:
        peer.close()


def test_a_name_resolving_to_a_private_address_is_not_posted_to_unless_listed():
    import ipaddress
    import socket

    name = socket.gethostname().lower()
    resolved = {info[4][0] for info in socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)}
    if all(ipaddress.ip_address(a.split("%")[0]).is_global for a in resolved):
        pytest.skip(f"{name} resolves to public addresses only here")
    peer = Peer(lambda _r: Reply(204)).start()
    try:
        url = f"http://{name}:{peer.port}/resolved"
        with pytest.raises(DeliveryError, match="non-public address"):
            HttpDelivery().post(url, {}, b"{}", 2)
        assert peer.requests == []
        listed = HttpDelivery((f"{name}:{peer.port}",))
        loopback = any(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in resolved)
        if loopback:  # the peer listens on 127.0.0.1
            assert listed.post(url, {}, b"{}", 2).status == 204
    finally:
        peer.close()


def _delivery(api: httpx.Client, tenant: Any, sub: str, delivery_id: str) -> dict[str, Any]:
    """The subscription's delivery ``delivery_id`` as listed (empty when not listed)."""
    return next((row for row in deliveries(api, tenant, sub) if row["id"] == delivery_id), {})


def _status(api: httpx.Client, tenant: Any, sub: str, delivery_id: str) -> str | None:
    return _delivery(api, tenant, sub, delivery_id).get("status")


def _wait_for(check: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return True


def _wait_delivered(api: httpx.Client, tenant: Any, sub: str, count: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def done() -> bool:
        nonlocal rows
        rows = deliveries(api, tenant, sub)
        return len(rows) == count and all(r["status"] == "succeeded" for r in rows)

    _wait_for(done)
    return rows


class TestSecretRotation:
    def test_during_the_grace_deliveries_verify_with_either_secret(self, api, tenant, receiver):
        created = subscribe(api, tenant, receiver.url("/rotating"))
        path = f"/v1/subscriptions/{created['id']}"
        r = api.post(f"{path}/rotate-secret", json={"grace_seconds": 600}, headers=tenant.headers())
        assert r.status_code == 200, r.text
        rotated = r.json()
        assert rotated["secret"] != created["secret"]
        assert rotated["previous_secret_expires_at"] is not None
        assert "secret" not in api.get(path, headers=tenant.headers()).json()
        assert api.post(f"{path}/test", headers=tenant.headers()).status_code == 202
        [got] = receiver.peer.wait_for(1, "/rotating")
        assert got.headers["x-scaicrew-signature"].count("sha256=") == 2
        verified(got, rotated["secret"])
        verified(got, created["secret"])

    def test_without_a_grace_only_the_new_secret_signs(self, api, tenant, receiver):
        created = subscribe(api, tenant, receiver.url("/rotated-now"))
        path = f"/v1/subscriptions/{created['id']}"
        r = api.post(f"{path}/rotate-secret", json={"grace_seconds": 0}, headers=tenant.headers())
        assert r.status_code == 200, r.text
        assert r.json()["previous_secret_expires_at"] is None
        assert api.post(f"{path}/test", headers=tenant.headers()).status_code == 202
        [got] = receiver.peer.wait_for(1, "/rotated-now")
        verified(got, r.json()["secret"])
        why = refusal(
            created["secret"],
            got.headers["x-scaicrew-timestamp"],
            got.headers["x-scaicrew-signature"],
            got.body,
            datetime.now(UTC),
        )
        assert why == "bad-signature"

    def test_another_workspaces_subscription_is_404(self, api, tenant, make_tenant, receiver):
        created = subscribe(api, tenant, receiver.url("/not-yours"))
        r = api.post(
            f"/v1/subscriptions/{created['id']}/rotate-secret", headers=make_tenant().headers()
        )
        assert r.status_code == 404
