"""Schedules: the scheduler's tick (driven with its own clock) and GET /v1/schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.kernel import Role
from tests.support.domain import tick_at
from tests.support.triggers import create_trigger, published_member


def _floor_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _mine(firings, trigger):
    return [f for f in firings if f.trigger_id == trigger["id"]]


def _schedule(client, tenant, **extra):
    author = tenant.headers(Role.AUTHOR)
    member = published_member(client, author)
    return create_trigger(client, author, member["id"], "schedule", **extra)


def _runs(client, tenant):
    r = client.get("/v1/runs", params={"origin": "schedule"}, headers=tenant.headers(Role.VIEWER))
    return r.json()["items"]


def test_a_due_slot_fires_once_as_the_trigger(client, tenant, app):
    trigger = _schedule(client, tenant, cron="* * * * *", input={"report": "daily"})
    use_cases = app.context.use_cases
    # Ten seconds into a minute, so that `now + 30 s` is still inside the same slot.
    now = _floor_minute(datetime.now(UTC)) + timedelta(minutes=2, seconds=10)
    [firing] = _mine(tick_at(use_cases, now), trigger)
    assert firing.slot == _floor_minute(now) and firing.run_id is not None
    assert _mine(tick_at(use_cases, now), trigger) == []  # the same slot never fires twice
    assert _mine(tick_at(use_cases, now + timedelta(seconds=30)), trigger) == []
    [run] = _runs(client, tenant)
    assert run["id"] == firing.run_id
    assert (run["origin"], run["input"]) == ("schedule", {"report": "daily"})
    assert run["created_by"] == f"trigger:{trigger['id']}"
    logged = client.get(
        f"/v1/triggers/{trigger['id']}/invocations", headers=tenant.headers(Role.VIEWER)
    ).json()["items"]
    assert [(i["outcome"], i["run_id"], i["source"]) for i in logged] == [
        ("accepted", firing.run_id, "schedule")
    ]
    assert logged[0]["slot"] == firing.slot.isoformat().replace("+00:00", "Z")


def test_only_the_latest_missed_slot_fires(client, tenant, app):
    trigger = _schedule(client, tenant, cron="*/5 * * * *")
    use_cases = app.context.use_cases
    # The scheduler was away for an hour: eleven slots passed, only the last one fires.
    now = datetime.now(UTC) + timedelta(hours=1)
    [firing] = _mine(tick_at(use_cases, now), trigger)
    assert firing.slot.minute % 5 == 0 and now - firing.slot < timedelta(minutes=5)
    assert len(_runs(client, tenant)) == 1


def test_slots_before_creation_never_fire(client, tenant, app):
    trigger = _schedule(client, tenant, cron="0 0 1 1 *")  # midnight, 1 January
    use_cases = app.context.use_cases
    assert _mine(tick_at(use_cases, datetime.now(UTC)), trigger) == []
    assert _runs(client, tenant) == []
    # The next 1 January, after creation, does fire: the scheduler was not simply idle.
    next_new_year = datetime(datetime.now(UTC).year + 1, 1, 1, 0, 0, 30, tzinfo=UTC)
    [firing] = _mine(tick_at(use_cases, next_new_year), trigger)
    assert firing.slot == next_new_year.replace(second=0)
    assert len(_runs(client, tenant)) == 1


def test_a_disabled_schedule_does_not_fire_and_restarts_afresh(client, tenant, app):
    trigger = _schedule(client, tenant, cron="* * * * *")
    use_cases = app.context.use_cases
    author = tenant.headers(Role.AUTHOR)
    client.post(f"/v1/triggers/{trigger['id']}/disable", headers=author)
    later = datetime.now(UTC) + timedelta(minutes=3)
    assert _mine(tick_at(use_cases, later), trigger) == []
    just_before = datetime.now(UTC)
    client.post(f"/v1/triggers/{trigger['id']}/enable", headers=author)
    # Re-enabled after `just_before`: the slot due then began earlier, so it does not fire.
    # (Ticking at `just_before`, not at a fresh now, keeps a minute boundary out of the test.)
    assert _mine(tick_at(use_cases, just_before), trigger) == []
    assert len(_mine(tick_at(use_cases, later), trigger)) == 1


def test_a_deleted_schedule_never_fires(client, tenant, app):
    trigger = _schedule(client, tenant, cron="* * * * *")
    use_cases = app.context.use_cases
    soon = datetime.now(UTC) + timedelta(minutes=2)
    assert len(_mine(tick_at(use_cases, soon), trigger)) == 1  # it fired while it lived
    client.delete(f"/v1/triggers/{trigger['id']}", headers=tenant.headers(Role.AUTHOR))
    later = soon + timedelta(minutes=3)
    assert _mine(tick_at(use_cases, later), trigger) == []
    assert len(_runs(client, tenant)) == 1


def test_the_time_zone_decides_the_slot(client, tenant, app):
    trigger = _schedule(client, tenant, cron="0 9 * * *", timezone="Asia/Tokyo")
    now = datetime.now(UTC) + timedelta(days=1)
    [firing] = _mine(tick_at(app.context.use_cases, now), trigger)
    assert firing.slot.hour == 0 and firing.slot.minute == 0  # 09:00 in Tokyo is 00:00 UTC


def test_a_slot_whose_input_no_longer_fits_is_logged_and_not_retried(client, tenant, app):
    author = tenant.headers(Role.AUTHOR)
    member = published_member(client, author)
    trigger = create_trigger(
        client, author, member["id"], "schedule", cron="* * * * *", input={"n": 1}
    )
    draft = {
        "objective": "Now with an input schema.",
        "input_schema": {"type": "object", "additionalProperties": False},
    }
    r = client.put(f"/v1/members/{member['id']}/draft", json=draft, headers=author)
    assert r.status_code == 200, r.text
    assert client.post(f"/v1/members/{member['id']}/publish", headers=author).status_code == 200
    now = datetime.now(UTC) + timedelta(minutes=2)
    [firing] = _mine(tick_at(app.context.use_cases, now), trigger)
    assert (firing.run_id, firing.reason) == (None, "input-schema-mismatch")
    assert _mine(tick_at(app.context.use_cases, now), trigger) == []
    logged = client.get(f"/v1/triggers/{trigger['id']}/invocations", headers=author).json()
    assert [(i["outcome"], i["reason"]) for i in logged["items"]] == [
        ("rejected", "input-schema-mismatch")
    ]


def test_schedules_list_their_next_run_time(client, tenant, app):
    daily = _schedule(client, tenant, cron="30 6 * * *", timezone="Europe/Paris")
    author = tenant.headers(Role.AUTHOR)
    never = create_trigger(client, author, daily["member_id"], "schedule", cron="0 0 30 2 *")
    off = create_trigger(client, author, daily["member_id"], "schedule", cron="@hourly")
    client.post(f"/v1/triggers/{off['id']}/disable", headers=author)
    create_trigger(client, author, daily["member_id"], "webhook")
    r = client.get("/v1/schedules", headers=tenant.headers(Role.VIEWER))
    assert r.status_code == 200
    items = {s["trigger_id"]: s for s in r.json()["items"]}
    assert set(items) == {daily["id"], never["id"], off["id"]}
    upcoming = datetime.fromisoformat(items[daily["id"]]["next_run_at"])
    assert upcoming > datetime.now(UTC) and upcoming - datetime.now(UTC) <= timedelta(days=1)
    assert upcoming.minute == 30 and upcoming.hour in (4, 5)  # 06:30 Paris, CET or CEST
    assert items[never["id"]]["next_run_at"] is None
    assert items[off["id"]]["next_run_at"] is None and items[off["id"]]["enabled"] is False
    assert items[daily["id"]]["last_slot_at"] is None
