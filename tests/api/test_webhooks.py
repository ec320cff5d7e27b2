"""Webhook ingress: signature, time window, de-duplication, refusals, size limit, the log."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from domain.kernel import Role
from domain.persistence import tables
from domain.persistence.sql import utc
from domain.triggers import WebhookDelivery, WebhookRejected, sign
from tests.api.helpers import errors_of, missing_id
from tests.support.domain import firing_at
from tests.support.triggers import (
    create_trigger,
    deliver,
    ingress_path,
    published_member,
    signed_headers,
)


def _webhook(client, tenant, definition=None):
    author = tenant.headers(Role.AUTHOR)
    member = published_member(client, author, definition)
    return create_trigger(client, author, member["id"], "webhook")


def _invocations(client, tenant, trigger):
    r = client.get(f"/v1/triggers/{trigger['id']}/invocations", headers=tenant.headers(Role.VIEWER))
    assert r.status_code == 200
    return r.json()["items"]


def _comparable(response):
    body = response.json()
    body.pop("instance", None)
    body["error"].pop("trace_id")
    return response.status_code, response.headers["WWW-Authenticate"], body


def test_a_signed_delivery_starts_the_member_with_the_body_as_input(client, tenant):
    trigger = _webhook(client, tenant)
    r = deliver(client, trigger, {"ticket": 42, "title": "Printer on fire"})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["replayed"] is False and accepted["trigger_id"] == trigger["id"]
    assert r.headers["Location"] == f"/v1/runs/{accepted['run_id']}"
    assert "Idempotent-Replayed" not in r.headers
    run = client.get(f"/v1/runs/{accepted['run_id']}", headers=tenant.headers(Role.VIEWER))
    assert run.status_code == 200
    assert run.json()["origin"] == "webhook"
    assert run.json()["input"] == {"ticket": 42, "title": "Printer on fire"}
    assert run.json()["created_by"] == f"trigger:{trigger['id']}"
    [logged] = _invocations(client, tenant, trigger)
    assert (logged["outcome"], logged["run_id"], logged["source"]) == (
        "accepted",
        accepted["run_id"],
        "webhook",
    )


def test_the_signature_covers_the_exact_bytes(client, tenant):
    trigger = _webhook(client, tenant)
    raw = b'{ "b": 1,\n  "a": [1, 2.50] }'
    headers = signed_headers(trigger["secret"], raw)
    assert client.post(ingress_path(trigger), content=raw, headers=headers).status_code == 202
    reordered = b'{"a": [1, 2.5], "b": 1}'  # the same JSON value, other bytes
    r = client.post(ingress_path(trigger), content=reordered, headers=headers)
    assert r.status_code == 401


def test_refusals_look_the_same_whatever_the_reason(client, tenant):
    trigger = _webhook(client, tenant)
    body = {"n": 1}
    wrong_secret = deliver(client, trigger, body, secret="whsec_" + "x" * 43)
    unknown = deliver(client, {**trigger, "id": missing_id("trg")}, body)
    stale = deliver(client, trigger, body, at=int(time.time()) - 3600)
    assert wrong_secret.status_code == unknown.status_code == stale.status_code == 401
    assert _comparable(wrong_secret) == _comparable(unknown) == _comparable(stale)
    assert wrong_secret.json()["type"] == "/problems/webhook-rejected"
    # The challenge names the signature scheme, not the API's bearer token.
    assert wrong_secret.headers["WWW-Authenticate"].startswith("HMAC-SHA256 ")
    assert trigger["id"] not in wrong_secret.json()["detail"]

    author = tenant.headers(Role.AUTHOR)
    client.post(f"/v1/triggers/{trigger['id']}/disable", headers=author)
    disabled = deliver(client, trigger, {"n": 2})
    assert _comparable(disabled) == _comparable(unknown)
    client.post(f"/v1/triggers/{trigger['id']}/enable", headers=author)
    assert deliver(client, trigger, {"n": 3}).status_code == 202

    other = _webhook(client, tenant)
    client.delete(f"/v1/triggers/{other['id']}", headers=author)
    assert _comparable(deliver(client, other, {"n": 4})) == _comparable(unknown)

    reasons = [i["reason"] for i in _invocations(client, tenant, trigger)]
    assert reasons == [None, "disabled", "stale-timestamp", "bad-signature"]


def test_the_window_is_five_minutes_either_way(client, tenant, app):
    trigger = _webhook(client, tenant)
    # Over HTTP, well inside and well outside (the server's clock moves on during the test).
    now = int(time.time())
    for offset, status in ((-200, 202), (200, 202), (-400, 401), (400, 401)):
        r = deliver(client, trigger, {"offset": offset}, at=now + offset)
        assert r.status_code == status, (offset, r.text)
    # The exact edge, through the use case with a fixed clock: 300 s is in, 301 s is out.
    clock = datetime.now(UTC).replace(microsecond=0)
    use_cases = app.context.use_cases
    for offset in (-300, 300):
        accepted = _received_at(use_cases, trigger, {"edge": offset}, clock, at_offset=offset)
        assert not accepted.replayed
    for offset in (-301, 301):
        with pytest.raises(WebhookRejected):
            _received_at(use_cases, trigger, {"edge": offset}, clock, at_offset=offset)
    outcomes = [(i["outcome"], i["reason"]) for i in _invocations(client, tenant, trigger)]
    assert sorted(outcomes, key=str) == sorted(
        [("accepted", None)] * 4 + [("rejected", "stale-timestamp")] * 4, key=str
    )


def test_a_replay_answers_the_original_run(client, tenant):
    trigger = _webhook(client, tenant)
    raw = json.dumps({"event": "created"}).encode()
    headers = signed_headers(trigger["secret"], raw)
    first = client.post(ingress_path(trigger), content=raw, headers=headers)
    again = client.post(ingress_path(trigger), content=raw, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["run_id"] == first.json()["run_id"] and again.json()["replayed"]
    assert again.headers["Idempotent-Replayed"] == "true"
    # A captured delivery re-sent with an Idempotency-Key of the attacker's choosing.
    forged = client.post(
        ingress_path(trigger), content=raw, headers={**headers, "Idempotency-Key": "evil-1"}
    )
    assert forged.json()["run_id"] == first.json()["run_id"]
    # The same body sent again later (new timestamp, new signature): the body hash matches.
    later = deliver(client, trigger, raw, at=int(time.time()) + 5)
    assert later.json()["run_id"] == first.json()["run_id"]
    runs = client.get(
        "/v1/runs", params={"origin": "webhook"}, headers=tenant.headers(Role.VIEWER)
    ).json()["items"]
    assert [r["id"] for r in runs] == [first.json()["run_id"]]
    outcomes = [i["outcome"] for i in _invocations(client, tenant, trigger)]
    assert outcomes == ["replayed", "replayed", "replayed", "accepted"]


def _received_at(use_cases, trigger, body, now, *, key=None, secret=None, at_offset=0):
    """The ingress use case, driven with its own clock: ``body`` signed at ``now`` (moved by
    ``at_offset`` seconds, a sender's clock skew)."""
    raw = json.dumps(body).encode()
    stamp = str(int(now.timestamp()) + at_offset)
    signature = sign(secret or trigger["secret"], stamp, raw)
    delivery = WebhookDelivery(trigger["id"], raw, body, stamp, signature, key)
    return firing_at(use_cases, now).receive_webhook(delivery)


def test_duplicates_are_remembered_for_the_window_only(client, tenant, app):
    """After WEBHOOK_DEDUP_SECONDS the same body (or key) is a new event: an hourly ping with
    a constant body is not swallowed forever."""
    trigger = _webhook(client, tenant)
    use_cases = app.context.use_cases
    window = timedelta(seconds=use_cases.settings.webhooks.dedup_seconds)

    def ping(now: datetime, key: str | None = None):
        return _received_at(use_cases, trigger, {"event": "ping"}, now, key=key)

    start = datetime.now(UTC)
    first = ping(start)
    assert ping(start + window - timedelta(seconds=5)).run_id == first.run_id
    fresh = ping(start + window + timedelta(seconds=5))
    assert (fresh.replayed, fresh.run_id != first.run_id) == (False, True)
    keyed = ping(start + 2 * window, key="evt-7")
    again = ping(start + 3 * window + timedelta(seconds=10), key="evt-7")
    assert again.run_id != keyed.run_id and not again.replayed
    outcomes = [i["outcome"] for i in _invocations(client, tenant, trigger)]
    assert outcomes == ["accepted", "accepted", "accepted", "replayed", "accepted"]


def test_keys_out_of_the_window_are_taken_over_and_forgotten_once_a_minute(client, tenant, app):
    """A key out of the window is claimed again without a DELETE first; the keys out of the
    window are deleted by the first accepted delivery of a process and then once a minute."""
    trigger = _webhook(client, tenant)
    use_cases = app.context.use_cases
    window = timedelta(seconds=use_cases.settings.webhooks.dedup_seconds)
    start = datetime.now(UTC)
    firing = firing_at(use_cases, start)

    def receive(body: dict, at: datetime):
        firing._clock.set(at)  # type: ignore[attr-defined]  # a ManualClock
        raw = json.dumps(body).encode()
        stamp = str(int(at.timestamp()))
        signed = sign(trigger["secret"], stamp, raw)
        return firing.receive_webhook(WebhookDelivery(trigger["id"], raw, body, stamp, signed))

    def recorded() -> set[str]:
        d = tables.webhook_deliveries
        with use_cases.database() as tx:
            rows = tx.connection.execute(
                select(d.c.delivery_key, d.c.created_at).where(d.c.trigger_id == trigger["id"])
            )
            return {
                f"{key.split(':')[0]}@{round((utc(at) - start).total_seconds())}"
                for key, at in rows
            }

    first = receive({"n": "a"}, start)  # forgets (nothing yet): the first of this process
    receive({"n": "c"}, start + window - timedelta(seconds=10))  # a minute on: forgets again
    again = receive({"n": "a"}, start + window + timedelta(seconds=5))  # not due: no DELETE
    assert (again.replayed, again.run_id != first.run_id) == (False, True)
    late = int((window + timedelta(seconds=5)).total_seconds())
    early = int((window - timedelta(seconds=10)).total_seconds())
    # The body key was taken over; the first signature's key, expired, is still there.
    expected = {"sig@0", f"sig@{early}", f"body@{early}", f"sig@{late}", f"body@{late}"}
    assert recorded() == expected
    # A minute after the last forgetting, the next accepted delivery deletes what expired.
    receive({"n": "d"}, start + 2 * window + timedelta(seconds=1))
    last = int((2 * window + timedelta(seconds=1)).total_seconds())
    assert recorded() == {f"sig@{late}", f"body@{late}", f"sig@{last}", f"body@{last}"}


def test_a_flood_of_forged_deliveries_is_refused_alike_but_logged_only_up_to_the_bound(
    client, tenant, app
):
    trigger = _webhook(client, tenant)
    use_cases = app.context.use_cases
    bound = use_cases.settings.webhooks.refusals_logged_per_minute
    start = datetime.now(UTC)
    for n in range(bound + 5):
        with pytest.raises(WebhookRejected):
            _received_at(use_cases, trigger, {"n": n}, start, secret="whsec_forged")
    # Past the bound, the answer over HTTP is still the one every refusal gets.
    past_bound = deliver(client, trigger, {"n": "http"}, secret="whsec_forged")
    unknown = deliver(client, {**trigger, "id": missing_id("trg")}, {"n": "http"})
    assert _comparable(past_bound) == _comparable(unknown)
    # A delivery that passes the signature is logged whatever the flood.
    assert deliver(client, trigger, {"n": 1}, key="evt-1").status_code == 202
    assert deliver(client, trigger, {"n": 2}, key="evt-1").status_code == 409
    # A minute later, refusals are logged again.
    with pytest.raises(WebhookRejected):
        _received_at(
            use_cases, trigger, {"n": "later"}, start + timedelta(seconds=61), secret="whsec_forged"
        )
    r = client.get(
        f"/v1/triggers/{trigger['id']}/invocations",
        params={"limit": 200},
        headers=tenant.headers(Role.VIEWER),
    )
    reasons = [i["reason"] for i in r.json()["items"]]
    assert reasons.count("bad-signature") == bound + 1
    assert reasons[:3] == ["bad-signature", "idempotency-key-reused", None]


def test_idempotency_keys_name_events(client, tenant):
    trigger = _webhook(client, tenant)
    one = deliver(client, trigger, {"same": True}, key="evt-1")
    two = deliver(client, trigger, {"same": True}, key="evt-2", at=int(time.time()) + 1)
    assert one.json()["run_id"] != two.json()["run_id"]  # same body, two events
    repeat = deliver(client, trigger, {"same": True}, key="evt-1", at=int(time.time()) + 2)
    assert repeat.json()["run_id"] == one.json()["run_id"] and repeat.json()["replayed"]
    reused = deliver(client, trigger, {"same": False}, key="evt-1")
    assert reused.status_code == 409
    assert reused.json()["type"] == "/problems/idempotency-key-reused"
    assert _invocations(client, tenant, trigger)[0]["reason"] == "idempotency-key-reused"


def test_the_body_must_satisfy_the_input_schema(client, tenant):
    definition = {
        "objective": "Triage one ticket.",
        "input_schema": {
            "type": "object",
            "required": ["ticket"],
            "properties": {"ticket": {"type": "integer"}},
        },
    }
    trigger = _webhook(client, tenant, definition)
    r = deliver(client, trigger, {"ticket": "seven"})
    assert r.status_code == 409
    assert r.json()["type"] == "/problems/input-schema-mismatch"
    assert errors_of(r.json())[0]["pointer"] == "/input/ticket"
    assert deliver(client, trigger, {"ticket": 7}).status_code == 202
    reasons = [i["reason"] for i in _invocations(client, tenant, trigger)]
    assert reasons == [None, "input-schema-mismatch"]


def test_the_body_must_be_a_json_object(client, tenant):
    trigger = _webhook(client, tenant)
    for raw in (b"[1, 2]", b"42", b"not json", b""):
        r = client.post(
            ingress_path(trigger), content=raw, headers=signed_headers(trigger["secret"], raw)
        )
        assert r.status_code == 400, (raw, r.text)


def test_malformed_signature_headers_are_400(client, tenant):
    trigger = _webhook(client, tenant)
    raw = b"{}"
    good = signed_headers(trigger["secret"], raw)
    for name, value in (
        ("X-ScaiCrew-Signature", "sha1=abc"),
        ("X-ScaiCrew-Signature", good["X-ScaiCrew-Signature"].upper()),
        ("X-ScaiCrew-Timestamp", "-5"),
        ("X-ScaiCrew-Timestamp", "1e9"),
    ):
        r = client.post(ingress_path(trigger), content=raw, headers={**good, name: value})
        assert r.status_code == 400, (name, value)
        assert errors_of(r.json())[0]["name"] == name
    missing = {k: v for k, v in good.items() if k != "X-ScaiCrew-Signature"}
    assert client.post(ingress_path(trigger), content=raw, headers=missing).status_code == 400


def test_bodies_over_the_ingress_limit_are_413(client, tenant, settings):
    trigger = _webhook(client, tenant)
    limit = settings.webhooks.max_body_bytes
    huge = json.dumps({"blob": "x" * limit}).encode()
    r = client.post(
        ingress_path(trigger), content=huge, headers=signed_headers(trigger["secret"], huge)
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "PayloadTooLarge"
    fits = json.dumps({"blob": "x" * (limit - 100)}).encode()
    assert len(fits) <= limit
    r = client.post(
        ingress_path(trigger), content=fits, headers=signed_headers(trigger["secret"], fits)
    )
    assert r.status_code == 202


def test_ingress_needs_no_credential_and_ignores_one(client, tenant, make_tenant):
    trigger = _webhook(client, tenant)
    raw = b'{"k": 1}'
    headers = {
        **signed_headers(trigger["secret"], raw),
        **make_tenant().headers(Role.VIEWER),  # another workspace's token changes nothing
    }
    r = client.post(ingress_path(trigger), content=raw, headers=headers)
    assert r.status_code == 202
    run = client.get(f"/v1/runs/{r.json()['run_id']}", headers=tenant.headers(Role.VIEWER))
    assert run.status_code == 200


def test_a_rotating_sender_may_send_several_signatures(client, tenant):
    """As subscriptions do during a secret rotation's grace (ADR 0045): any one may match."""
    trigger = _webhook(client, tenant)
    raw = b'{"n": 2}'
    good = signed_headers(trigger["secret"], raw)
    other = sign("whsec_" + "y" * 43, good["X-ScaiCrew-Timestamp"], raw)
    headers = {**good, "X-ScaiCrew-Signature": f"{other},{good['X-ScaiCrew-Signature']}"}
    assert client.post(ingress_path(trigger), content=raw, headers=headers).status_code == 202
    headers = {**good, "X-ScaiCrew-Signature": f"{other},{other}"}
    raw2 = b'{"n": 3}'
    assert client.post(ingress_path(trigger), content=raw2, headers=headers).status_code == 401


def test_an_accepted_delivery_runs_every_statement_on_the_driver(client, tenant, database):
    """ADR 0064, ADR 0069: every busy statement of the accepted path runs through
    ``DriverStatements``; a change that makes one step aside (a Python-side default, an
    expanding parameter) loses its saving silently, so it is checked here."""
    from domain.budgets import repository as budgets
    from domain.members import repository as members
    from domain.persistence.driver import DriverStatements
    from domain.runs import repository as runs
    from domain.stream import repository as stream
    from domain.triggers import repository as triggers

    trigger = _webhook(client, tenant)
    assert deliver(client, trigger, {"driver": 1}).status_code == 202
    hot = [
        *triggers._TRIGGER_BY_ID.values(),
        triggers._FIND_DELIVERY,
        triggers._CLAIM_DELIVERIES,
        triggers._INSERT_INVOCATION,
        *members._MEMBER_TO_RUN.values(),
        budgets._COVERING,
        runs._INSERT_RUN,
        runs._INSERT_RUN_EVENTS,
    ]
    if database.is_sqlite:  # PostgreSQL appends the events with one statement of its own
        hot.append(stream._INSERT_WORKSPACE_EVENTS)
    dialect = database.engine.dialect.name
    prepared = {
        statement_id: entry
        for (statement_id, _keys, name, _style, _rows), entry in DriverStatements._prepared.items()
        if statement_id in {id(statement) for statement in hot} and name == dialect
    }
    # One trigger read and one member read of their variants, and the seven others.
    assert len(prepared) >= (9 if database.is_sqlite else 8), prepared
    assert all(entry is not None for entry in prepared.values()), prepared
