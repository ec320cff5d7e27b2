"""Schedule arithmetic: cron expressions in an IANA time zone, as pure functions.

A slot is an instant at which the cron expression matches in the trigger's time zone, stored
in UTC. The scheduler fires at most the *latest* due slot (never the ones it missed before it)
and never a slot from before the trigger became active.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from domain.kernel.errors import InvalidField

DEFAULT_TIMEZONE = "UTC"
# Not zones a person means: ``localtime`` follows the server, ``Factory`` is a placeholder.
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules", "posix", "right"})


def normalise_cron(expression: str) -> str:
    """Return ``expression`` without surrounding whitespace if croniter accepts it.

    Only five-field expressions (minute hour day-of-month month day-of-week) and the
    ``@hourly``-style macros are schedules here: a sixth (seconds) field is refused.

    :raises InvalidField: naming ``/cron``.
    """
    cleaned = expression.strip()
    fields = cleaned.split()
    if not cleaned.startswith("@") and len(fields) != 5:
        raise InvalidField(
            "/cron",
            "cron",
            f"A cron expression has 5 fields (minute hour day month weekday), not {len(fields)}.",
        )
    try:
        valid = croniter.is_valid(cleaned)
    except (CroniterError, ValueError, KeyError):
        valid = False
    if not valid:
        raise InvalidField("/cron", "cron", f"'{cleaned[:100]}' is not a valid cron expression.")
    return cleaned


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``.

    :raises InvalidField: naming ``/timezone``.
    """
    if name in _NOT_ZONES or name.startswith(("/", ".")) or ".." in name:
        raise InvalidField("/timezone", "timezone", f"'{name[:64]}' is not an IANA time zone.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidField(
            "/timezone", "timezone", f"'{name[:64]}' is not an IANA time zone."
        ) from None


def latest_due_slot(
    cron: str, timezone: str, now: datetime, not_before: datetime
) -> datetime | None:
    """The latest slot at or before ``now`` and at or after ``not_before`` (UTC), if any.

    Slots the scheduler missed before the latest one are not returned: no back-fill.
    """
    # croniter's previous match is strictly earlier than its start; start one second later
    # so that a slot exactly at ``now`` counts as due.
    start = now.astimezone(ZoneInfo(timezone)).replace(microsecond=0) + timedelta(seconds=1)
    try:
        previous: datetime = croniter(cron, start).get_prev(datetime)
    except (CroniterBadDateError, CroniterBadCronError):
        return None  # an expression that never matches (e.g. 30 February)
    slot = previous.astimezone(UTC)
    if slot > now or slot < not_before:
        return None
    return slot


def next_slot(cron: str, timezone: str, after: datetime) -> datetime | None:
    """The first slot strictly after ``after`` (UTC), or None if the expression never matches."""
    start = after.astimezone(ZoneInfo(timezone))
    try:
        following: datetime = croniter(cron, start).get_next(datetime)
    except (CroniterBadDateError, CroniterBadCronError):
        return None
    return following.astimezone(UTC)
