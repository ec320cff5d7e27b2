"""Trigger edits and secret rotation on the model: what moves ``active_since``, what a
rotation keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.triggers import Trigger, TriggerChanges, TriggerKind

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _schedule() -> Trigger:
    return Trigger(
        id="trg_1",
        workspace_id="wsp_1",
        member_id="mem_1",
        kind=TriggerKind.SCHEDULE,
        name="Daily",
        description="",
        enabled=True,
        cron="0 9 * * *",
        timezone="UTC",
        input={},
        secret_ciphertext=None,
        active_since=T0,
        created_by="user",
        created_at=T0,
        updated_at=T0,
        deleted_at=None,
    )


def test_a_new_cron_or_zone_starts_the_schedule_afresh():
    later = T0 + timedelta(days=3)
    assert _schedule().edited(later, TriggerChanges(cron="0 10 * * *")).active_since == later
    assert _schedule().edited(later, TriggerChanges(timezone="Europe/Paris")).active_since == later


def test_a_rename_or_the_same_cron_keeps_the_schedule():
    later = T0 + timedelta(days=3)
    renamed = _schedule().edited(later, TriggerChanges(name="Renamed", cron="0 9 * * *"))
    assert (renamed.name, renamed.active_since, renamed.updated_at) == ("Renamed", T0, later)


def test_a_rotation_keeps_the_old_secret_only_with_a_grace_period():
    webhook = Trigger(
        **{**_schedule().__dict__, "kind": TriggerKind.WEBHOOK, "secret_ciphertext": "old"}
    )
    kept = webhook.with_rotated_secret("new", T0 + timedelta(hours=1), T0)
    assert (kept.secret_ciphertext, kept.previous_secret_ciphertext) == ("new", "old")
    dropped = webhook.with_rotated_secret("new", None, T0)
    assert (dropped.previous_secret_ciphertext, dropped.previous_secret_expires_at) == (None, None)
