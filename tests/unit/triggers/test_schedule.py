"""Slot arithmetic: latest due slot, next slot, time zones and DST, cron and zone checks."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.kernel import InvalidField
from domain.triggers.schedule import latest_due_slot, next_slot, normalise_cron, zone
from scaicrew.app import SPEC_PATH

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_slot_exactly_at_now_is_due():
    now = at("2026-03-02T10:00:00+00:00")
    assert latest_due_slot("0 * * * *", "UTC", now, EPOCH) == now


def test_only_the_latest_slot_is_due_never_the_missed_ones():
    now = at("2026-03-02T10:17:30+00:00")
    assert latest_due_slot("*/5 * * * *", "UTC", now, EPOCH) == at("2026-03-02T10:15:00+00:00")
    assert latest_due_slot("0 9 * * *", "UTC", now, EPOCH) == at("2026-03-02T09:00:00+00:00")


def test_slots_before_not_before_are_never_due():
    now = at("2026-03-02T10:30:00+00:00")
    assert latest_due_slot("0 * * * *", "UTC", now, now - timedelta(minutes=29)) is None
    assert latest_due_slot("0 * * * *", "UTC", now, now - timedelta(minutes=30)) is not None


def test_the_zone_decides_the_instant_across_daylight_saving():
    # 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer (DST from 29 March 2026).
    winter = latest_due_slot("0 9 * * *", "Europe/Paris", at("2026-03-27T12:00:00+00:00"), EPOCH)
    summer = latest_due_slot("0 9 * * *", "Europe/Paris", at("2026-03-30T12:00:00+00:00"), EPOCH)
    assert winter == at("2026-03-27T08:00:00+00:00")
    assert summer == at("2026-03-30T07:00:00+00:00")
    assert next_slot("0 9 * * *", "Europe/Paris", at("2026-03-28T12:00:00+00:00")) == at(
        "2026-03-29T07:00:00+00:00"
    )


def test_next_slot_is_strictly_after():
    start = at("2026-03-02T10:00:00+00:00")
    assert next_slot("0 * * * *", "UTC", start) == at("2026-03-02T11:00:00+00:00")
    assert next_slot("@daily", "UTC", start) == at("2026-03-03T00:00:00+00:00")


def test_an_expression_that_never_matches_has_no_slots():
    now = at("2026-03-02T10:00:00+00:00")
    assert latest_due_slot("0 0 30 2 *", "UTC", now, EPOCH) is None
    assert next_slot("0 0 31 2 *", "UTC", now) is None


@pytest.mark.parametrize(
    "expression", ["* * * *", "* * * * * *", "61 * * * *", "*/0 * * * *", "@sometimes", "x"]
)
def test_garbage_cron_is_refused_naming_the_field(expression):
    with pytest.raises(InvalidField) as caught:
        normalise_cron(expression)
    assert caught.value.pointer == "/cron"


def test_cron_is_trimmed():
    assert normalise_cron(" @hourly\n") == "@hourly"


@pytest.mark.parametrize("name", ["Mars/Base", "localtime", "../../etc/passwd", "", "Factory"])
def test_unknown_zones_are_refused_naming_the_field(name):
    with pytest.raises(InvalidField) as caught:
        zone(name)
    assert caught.value.pointer == "/timezone"


def _schema(name: str) -> dict:
    with SPEC_PATH.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)["components"]["schemas"][name]


def test_every_iana_zone_fits_the_contracts_pattern_and_is_known_here():
    pattern = re.compile(_schema("TimeZone")["pattern"])
    names = zoneinfo.available_timezones() - {"Factory", "localtime"}  # not time zones
    assert len(names) > 300
    for name in names:
        assert pattern.fullmatch(name), name
        zone(name)


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "Europe/Atlantis", "GMT+25"])
def test_a_name_outside_the_iana_database_is_invalid_at_timezone(name):
    with pytest.raises(InvalidField) as caught:
        zone(name)
    assert caught.value.details()["errors"][0]["pointer"] == "/timezone"


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.from_regex(re.compile(_schema("CronExpression")["pattern"])))
def test_every_expression_the_contract_accepts_is_a_schedule(expression):
    # Any string matching the contract's pattern must be accepted (no 400 for valid input).
    cron = normalise_cron(expression)
    latest_due_slot(cron, "UTC", at("2026-03-02T10:00:00+00:00"), EPOCH)
