"""Trigger edits and webhook secret rotation (issue 14)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from domain.kernel import Role
from domain.triggers import WebhookDelivery, WebhookRejected, sign
from tests.api.helpers import errors_of
from tests.support.domain import firing_at, tick_at
from tests.support.openapi_check import check_problem
from tests.support.triggers import create_trigger, deliver, published_member


def _trigger(client, tenant, kind, **extra):
    h = tenant.headers(Role.AUTHOR)
    return create_trigger(client, h, published_member(client, h)["id"], kind, **extra)


def _mine(firings, trigger):
    return [f for f in firings if f.trigger_id == trigger["id"]]


def _log(client, tenant, trigger):
    r = client.get(f"/v1/triggers/{trigger['id']}/invocations", headers=tenant.headers())
    return [(i["outcome"], i["secret"]) for i in reversed(r.json()["items"])]


class TestUpdateTrigger:
    def test_a_new_cron_takes_effect_from_the_next_slot_without_back_filling(
        self, client, tenant, app
    ):
        trigger = _trigger(client, tenant, "schedule", cron="0 0 1 1 *")
        use_cases = app.context.use_cases
        edited_at = datetime.now(UTC)
        r = client.patch(
            f"/v1/triggers/{trigger['id']}",
            json={"cron": "* * * * *", "timezone": "Europe/Amsterdam"},
            headers=tenant.headers(Role.AUTHOR),
        )
        assert r.status_code == 200, r.text
        assert (r.json()["cron"], r.json()["timezone"]) == ("* * * * *", "Europe/Amsterdam")
        assert r.json()["id"] == trigger["id"] and r.json()["kind"] == "schedule"
        # The minute the edit fell in began before it: it is never fired.
        assert _mine(tick_at(use_cases, edited_at), trigger) == []
        # An hour later, only the latest slot fires (no back-fill of the missed ones).
        later = edited_at + timedelta(hours=1)
        [firing] = _mine(tick_at(use_cases, later), trigger)
        assert firing.run_id is not None and later - firing.slot < timedelta(minutes=1)

    def test_a_new_input_is_used_by_later_slots(self, client, tenant, app):
        trigger = _trigger(client, tenant, "schedule", cron="* * * * *", input={"n": 1})
        h = tenant.headers(Role.AUTHOR)
        r = client.patch(f"/v1/triggers/{trigger['id']}", json={"input": {"n": 2}}, headers=h)
        assert r.json()["input"] == {"n": 2}
        soon = datetime.now(UTC) + timedelta(minutes=2)
        [firing] = _mine(tick_at(app.context.use_cases, soon), trigger)
        run = client.get(f"/v1/runs/{firing.run_id}", headers=h).json()
        assert run["input"] == {"n": 2}

    def test_a_renamed_webhook_keeps_its_url_and_secret(self, client, tenant):
        trigger = _trigger(client, tenant, "webhook")
        r = client.patch(
            f"/v1/triggers/{trigger['id']}",
            json={"name": "Renamed", "description": "Helpdesk"},
            headers=tenant.headers(Role.AUTHOR),
        )
        assert r.status_code == 200, r.text
        assert r.json()["ingress_url"] == trigger["ingress_url"]
        assert deliver(client, trigger, {"n": 1}).status_code == 202

    def test_schedule_fields_on_a_webhook_are_a_conflict_naming_them(self, client, tenant):
        trigger = _trigger(client, tenant, "webhook")
        r = client.patch(
            f"/v1/triggers/{trigger['id']}",
            json={"cron": "@daily"},
            headers=tenant.headers(Role.AUTHOR),
        )
        body = check_problem(r, 409, "Conflict")
        assert body["type"] == "/problems/schedule-only"
        assert body["error"]["details"]["pointer"] == "/cron"

    @pytest.mark.parametrize("field", ["kind", "member_id"])
    def test_kind_and_member_are_immutable(self, client, tenant, field):
        trigger = _trigger(client, tenant, "schedule", cron="@daily")
        r = client.patch(
            f"/v1/triggers/{trigger['id']}",
            json={field: trigger[field], "name": "x"},
            headers=tenant.headers(Role.AUTHOR),
        )
        body = check_problem(r, 400, "ValidationError")
        assert errors_of(body)[0]["pointer"] == f"/{field}"

    def test_a_garbage_cron_is_a_validation_error(self, client, tenant):
        trigger = _trigger(client, tenant, "schedule", cron="@daily")
        r = client.patch(
            f"/v1/triggers/{trigger['id']}",
            json={"cron": "61 * * * *"},
            headers=tenant.headers(Role.AUTHOR),
        )
        check_problem(r, 400, "ValidationError")

    def test_a_deleted_trigger_is_not_found(self, client, tenant):
        trigger = _trigger(client, tenant, "schedule", cron="@daily")
        h = tenant.headers(Role.AUTHOR)
        client.delete(f"/v1/triggers/{trigger['id']}", headers=h)
        r = client.patch(f"/v1/triggers/{trigger['id']}", json={"name": "x"}, headers=h)
        check_problem(r, 404, "NotFound")

    def test_an_operator_may_not_edit(self, client, tenant):
        trigger = _trigger(client, tenant, "schedule", cron="@daily")
        r = client.patch(
            f"/v1/triggers/{trigger['id']}",
            json={"name": "x"},
            headers=tenant.headers(Role.OPERATOR),
        )
        check_problem(r, 403, "Forbidden")

    def test_a_stale_if_match_is_412(self, client, tenant):
        trigger = _trigger(client, tenant, "schedule", cron="@daily")
        h = tenant.headers(Role.AUTHOR)
        etag = client.get(f"/v1/triggers/{trigger['id']}", headers=h).headers["ETag"]
        first = client.patch(
            f"/v1/triggers/{trigger['id']}", json={"name": "A"}, headers={**h, "If-Match": etag}
        )
        assert first.status_code == 200
        second = client.patch(
            f"/v1/triggers/{trigger['id']}", json={"name": "B"}, headers={**h, "If-Match": etag}
        )
        check_problem(second, 412, "PreconditionFailed")


class TestRotateSecret:
    def test_both_secrets_verify_during_the_grace_period_and_the_log_says_which(
        self, client, tenant
    ):
        trigger = _trigger(client, tenant, "webhook")
        r = client.post(
            f"/v1/triggers/{trigger['id']}/rotate-secret",
            json={"grace_seconds": 3600},
            headers=tenant.headers(Role.AUTHOR),
        )
        assert r.status_code == 200, r.text
        rotated = r.json()
        assert rotated["secret"].startswith("whsec_") and rotated["secret"] != trigger["secret"]
        assert rotated["previous_secret_expires_at"] is not None
        assert (
            "secret"
            not in client.get(f"/v1/triggers/{trigger['id']}", headers=tenant.headers()).json()
        )
        assert deliver(client, trigger, {"n": 1}).status_code == 202
        assert deliver(client, trigger, {"n": 2}, secret=rotated["secret"]).status_code == 202
        assert _log(client, tenant, trigger) == [("accepted", "previous"), ("accepted", "current")]

    def test_the_old_secret_stops_once_the_grace_period_is_over(self, client, tenant, app):
        trigger = _trigger(client, tenant, "webhook")
        client.post(
            f"/v1/triggers/{trigger['id']}/rotate-secret",
            json={"grace_seconds": 60},
            headers=tenant.headers(Role.AUTHOR),
        )
        later = datetime.now(UTC) + timedelta(seconds=120)
        raw = json.dumps({"n": 1}).encode()
        stamp = str(int(later.timestamp()))
        delivery = WebhookDelivery(
            trigger["id"], raw, {"n": 1}, stamp, sign(trigger["secret"], stamp, raw)
        )
        with pytest.raises(WebhookRejected):
            firing_at(app.context.use_cases, later).receive_webhook(delivery)

    def test_no_grace_means_the_old_secret_stops_at_once(self, client, tenant):
        trigger = _trigger(client, tenant, "webhook")
        r = client.post(
            f"/v1/triggers/{trigger['id']}/rotate-secret",
            json={"grace_seconds": 0},
            headers=tenant.headers(Role.AUTHOR),
        )
        assert r.json()["previous_secret_expires_at"] is None
        assert deliver(client, trigger, {"n": 1}).status_code == 401
        assert deliver(client, trigger, {"n": 1}, secret=r.json()["secret"]).status_code == 202

    def test_the_default_grace_period_is_a_day(self, client, tenant):
        trigger = _trigger(client, tenant, "webhook")
        before = datetime.now(UTC)
        r = client.post(
            f"/v1/triggers/{trigger['id']}/rotate-secret", headers=tenant.headers(Role.AUTHOR)
        )
        assert r.status_code == 200, r.text
        expires = datetime.fromisoformat(r.json()["previous_secret_expires_at"])
        assert timedelta(hours=23, minutes=59) < expires - before <= timedelta(hours=24, seconds=5)

    def test_a_second_rotation_ends_the_first_secret_at_once(self, client, tenant):
        trigger = _trigger(client, tenant, "webhook")
        h = tenant.headers(Role.AUTHOR)
        first = client.post(f"/v1/triggers/{trigger['id']}/rotate-secret", headers=h).json()
        second = client.post(f"/v1/triggers/{trigger['id']}/rotate-secret", headers=h).json()
        assert deliver(client, trigger, {"n": 1}).status_code == 401
        assert deliver(client, trigger, {"n": 2}, secret=first["secret"]).status_code == 202
        assert deliver(client, trigger, {"n": 3}, secret=second["secret"]).status_code == 202

    def test_a_schedule_has_no_secret_to_rotate(self, client, tenant):
        trigger = _trigger(client, tenant, "schedule", cron="@daily")
        r = client.post(
            f"/v1/triggers/{trigger['id']}/rotate-secret", headers=tenant.headers(Role.AUTHOR)
        )
        assert check_problem(r, 409, "Conflict")["type"] == "/problems/not-a-webhook"

    def test_a_deleted_triggers_secret_is_not_found(self, client, tenant):
        trigger = _trigger(client, tenant, "webhook")
        h = tenant.headers(Role.AUTHOR)
        client.delete(f"/v1/triggers/{trigger['id']}", headers=h)
        r = client.post(f"/v1/triggers/{trigger['id']}/rotate-secret", headers=h)
        check_problem(r, 404, "NotFound")

    def test_an_operator_may_not_rotate(self, client, tenant):
        trigger = _trigger(client, tenant, "webhook")
        r = client.post(
            f"/v1/triggers/{trigger['id']}/rotate-secret", headers=tenant.headers(Role.OPERATOR)
        )
        check_problem(r, 403, "Forbidden")

    def test_a_grace_period_over_thirty_days_is_a_validation_error(self, client, tenant):
        trigger = _trigger(client, tenant, "webhook")
        r = client.post(
            f"/v1/triggers/{trigger['id']}/rotate-secret",
            json={"grace_seconds": 30 * 86400 + 1},
            headers=tenant.headers(Role.AUTHOR),
        )
        check_problem(r, 400, "ValidationError")
