"""GET /v1/stream: live events, replay after Last-Event-ID, keep-alives, roles, isolation,
tickets, and a client that goes away.

Everything goes to one app served by uvicorn in a thread (``tests/support/sse.py``): the
in-process client buffers whole responses, so it cannot show live delivery. Bounded streams
(``max_seconds``) are read whole; live ones through a ``StreamReader``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from domain.kernel import ManualClock, Role
from handlers._http import timestamp
from scaicrew.app import create_app
from tests.api.helpers import validate_hook
from tests.support.openapi_check import check_problem, validate_stream_event
from tests.support.runs import NOTES, POSTER, approvals_of, published_member, start, wait_for
from tests.support.sse import StreamReader, parse, run_statuses, served

KEEPALIVE = 0.2


def _validate(response: httpx.Response) -> None:
    # openapi-core has no text/event-stream deserializer; the SSE events are checked by the
    # tests themselves (and event by event by Schemathesis), everything else by the contract.
    response.read()
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        validate_hook(response)


@pytest.fixture(scope="module")
def stream_app(settings: Any) -> Any:
    return create_app(
        settings.with_changes(
            stream_keepalive_seconds=KEEPALIVE, stream_max_seconds=30, worker_threads=2
        )
    )


@pytest.fixture(scope="module")
def base_url(stream_app: Any) -> Iterator[str]:
    with served(stream_app) as url:
        yield url


@pytest.fixture
def api(base_url: str) -> Iterator[httpx.Client]:
    """A validating client of the served app (one app, one lifespan, for every test here)."""
    with httpx.Client(base_url=base_url, timeout=30) as c:
        c.event_hooks["response"] = [_validate]
        yield c


def read_stream(api: httpx.Client, headers: dict[str, str], **params: Any) -> Any:
    r = api.get("/v1/stream", headers=headers, params={"max_seconds": 1, **params})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    parsed = parse(r.text)
    for event in parsed.events:
        validate_stream_event(event.event, event.id, event.data)
    return parsed


def finished_run(api: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    member = published_member(api, headers, NOTES)
    return wait_for(api, headers, start(api, headers, member["id"])["id"])


class TestLiveEvents:
    def test_a_started_run_is_followed_to_its_end(self, api, base_url, tenant):
        h = tenant.headers(Role.OPERATOR)
        member = published_member(api, tenant.headers(Role.AUTHOR), NOTES)
        with StreamReader(base_url, tenant.headers(Role.VIEWER), {}) as reader:
            run = start(api, h, member["id"])
            events = reader.wait_for(lambda e: "succeeded" in run_statuses(e, run["id"]))
        assert reader.status == 200
        assert run_statuses(events, run["id"]) == ["queued", "running", "succeeded"]
        seqs = [e.seq for e in events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # gap-free, in order
        assert all(e.data["at"].endswith("Z") for e in events)
        for event in events:
            validate_stream_event(event.event, event.id, event.data)

    def test_approvals_are_announced_when_requested_and_decided(self, api, base_url, tenant):
        h = tenant.headers(Role.OPERATOR)
        member = published_member(api, tenant.headers(Role.AUTHOR), POSTER)
        with StreamReader(base_url, tenant.headers(Role.VIEWER), {}) as reader:
            run = start(api, h, member["id"], {"url": "http://127.0.0.1:9/"})
            reader.wait_for(lambda e: any(x.event == "approval.requested" for x in e))
            [approval] = approvals_of(api, h, run["id"])
            r = api.post(f"/v1/approvals/{approval['id']}/approve", headers=h)
            assert r.status_code == 200, r.text
            events = reader.wait_for(lambda e: "failed" in run_statuses(e, run["id"]))
        for event in events:
            validate_stream_event(event.event, event.id, event.data)
        requested = next(e for e in events if e.event == "approval.requested")
        decided = next(e for e in events if e.event == "approval.decided")
        assert requested.data["approval_id"] == approval["id"]
        assert requested.data["run_id"] == run["id"]
        assert requested.data["tool"] == "http_post"
        assert decided.data == {**decided.data, "approval_id": approval["id"], "status": "approved"}
        assert run_statuses(events, run["id"]) == [
            "queued",
            "running",
            "waiting_approval",
            "queued",
            "running",
            "failed",  # 127.0.0.1 is not allow-listed
        ]

    def test_keep_alive_comments_arrive_while_nothing_happens(self, api, tenant):
        parsed = read_stream(api, tenant.headers(Role.VIEWER))
        assert parsed.events == []
        assert sum(c.startswith("ping") for c in parsed.comments) >= 2
        assert parsed.retry == 2000

    def test_a_client_that_goes_away_is_unsubscribed(self, stream_app, base_url, tenant):
        hub = stream_app.context.use_cases.hub
        before = hub.subscriber_count()
        with StreamReader(base_url, tenant.headers(Role.VIEWER), {}):
            assert hub.subscriber_count() == before + 1
        deadline = time.monotonic() + 10
        while hub.subscriber_count() != before:
            assert time.monotonic() < deadline, "the subscription outlived its client"
            time.sleep(0.02)

    def test_a_head_request_leaves_no_subscription_behind(self, api, stream_app, tenant):
        hub = stream_app.context.use_cases.hub
        before = hub.subscriber_count()
        r = api.head("/v1/stream", headers=tenant.headers(Role.VIEWER))
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert hub.subscriber_count() == before


class TestReplay:
    def test_last_event_id_replays_everything_after_it_without_gaps(self, api, tenant):
        h = tenant.headers()
        first = finished_run(api, h)
        second = finished_run(api, h)
        everything = read_stream(api, h, last_event_id=0).events
        assert [e.seq for e in everything] == list(range(1, len(everything) + 1))
        assert run_statuses(everything, first["id"]) == ["queued", "running", "succeeded"]
        assert run_statuses(everything, second["id"]) == ["queued", "running", "succeeded"]

        resumed = read_stream(api, {**h, "Last-Event-ID": "2"}).events
        assert [e.seq for e in resumed] == [e.seq for e in everything][2:]
        assert resumed == everything[2:]

    def test_the_header_wins_over_the_query_parameter(self, api, tenant):
        h = tenant.headers()
        finished_run(api, h)
        events = read_stream(api, {**h, "Last-Event-ID": "2"}, last_event_id=0).events
        assert [e.seq for e in events] == [3]

    def test_an_id_beyond_the_log_answers_a_reset_to_the_head(self, api, tenant):
        h = tenant.headers()
        finished_run(api, h)
        events = read_stream(api, {**h, "Last-Event-ID": "999"}).events
        assert [(e.event, e.id) for e in events] == [("reset", "3")]
        assert events[0].data == {"reason": "last_event_id_unavailable", "last_event_id": 3}

    def test_an_id_older_than_the_retention_answers_a_reset(self, api, stream_app, tenant):
        h = tenant.headers()
        finished_run(api, h)
        hub = stream_app.context.use_cases.hub
        hub.prune(datetime.now(UTC) + timedelta(days=3650))  # all of it
        events = read_stream(api, h, last_event_id=0).events
        assert [(e.event, e.id) for e in events] == [("reset", "3")]

    def test_a_malformed_last_event_id_is_a_bad_request(self, api, tenant):
        r = api.get("/v1/stream", headers={**tenant.headers(), "Last-Event-ID": "abc"})
        check_problem(r, 400, "ValidationError")


class TestAccess:
    def test_a_viewer_may_follow_the_stream(self, api, tenant):
        assert read_stream(api, tenant.headers(Role.VIEWER)).retry == 2000

    def test_no_credential_is_unauthorized(self, api):
        check_problem(api.get("/v1/stream"), 401, "Unauthorized")

    def test_another_workspace_never_sees_our_events(self, api, base_url, make_tenant):
        ours, theirs = make_tenant(), make_tenant()
        with StreamReader(base_url, theirs.headers(Role.VIEWER), {"last_event_id": 0}) as reader:
            run = finished_run(api, ours.headers())
            mine = finished_run(api, theirs.headers())
            events = reader.wait_for(lambda e: "succeeded" in run_statuses(e, mine["id"]))
        assert run_statuses(events, run["id"]) == []
        assert read_stream(api, theirs.headers(), last_event_id=0).events == events


class TestTickets:
    def test_a_ticket_opens_one_stream_as_its_holder(self, api, tenant):
        h = tenant.headers(Role.VIEWER)
        run = finished_run(api, tenant.headers())
        r = api.post("/v1/stream/tickets", headers=h)
        assert r.status_code == 201, r.text
        ticket = r.json()
        assert ticket["stream_url"] == f"/v1/stream?ticket={ticket['ticket']}"
        opened = api.get(ticket["stream_url"] + "&max_seconds=1&last_event_id=0")
        assert opened.status_code == 200, opened.text
        assert run_statuses(parse(opened.text).events, run["id"]) == [
            "queued",
            "running",
            "succeeded",
        ]
        again = api.get(ticket["stream_url"] + "&max_seconds=1")
        check_problem(again, 401, "Unauthorized")

    def test_an_expired_ticket_is_refused(self, settings, tenant):
        clock = ManualClock(datetime.now(UTC))
        app = create_app(settings.with_changes(worker_threads=0), clock=clock)
        with app.test_client() as c:
            c.event_hooks["response"] = [_validate]
            issued = c.post("/v1/stream/tickets", headers=tenant.headers()).json()
            assert issued["expires_at"] == timestamp(
                clock.now() + timedelta(seconds=settings.stream.ticket_seconds)
            )
            clock.advance(settings.stream.ticket_seconds + 1)
            check_problem(c.get(f"/v1/stream?ticket={issued['ticket']}"), 401, "Unauthorized")

    def test_a_made_up_ticket_is_refused(self, api):
        made_up = "stk_" + "A" * 43
        check_problem(api.get(f"/v1/stream?ticket={made_up}"), 401, "Unauthorized")
        check_problem(api.get("/v1/stream?ticket=nonsense"), 401, "Unauthorized")

    def test_tickets_need_a_credential(self, api):
        check_problem(api.post("/v1/stream/tickets"), 401, "Unauthorized")
