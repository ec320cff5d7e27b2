"""Errors of subscriptions: refused target URLs (409, pointer ``/url``: a schema cannot state
the host policy, ADR 0043) and unknown event types (400)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from domain.kernel.errors import InvalidField, RuleViolation
from domain.subscriptions.model import EVENT_TYPES


def check_target_url(url: str, allowed_hosts: tuple[str, ...]) -> None:
    """A target must be an absolute http(s) URL without credentials; a loopback, private or
    link-local host only when listed in ``SUBSCRIPTION_ALLOWED_HOSTS`` (``host`` or
    ``host:port``).

    :raises RuleViolation: ``subscription-url-refused`` (pointer ``/url``).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
        hostname = parts.hostname
    except ValueError:
        raise _refused("its host or port is malformed") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise _refused("an absolute http(s) URL is required")
    if parts.username is not None or parts.password is not None:
        raise _refused("credentials in the URL are not accepted")
    host = hostname.lower()
    allowed = {entry.lower() for entry in allowed_hosts}
    if host in allowed or f"{host}:{port}" in allowed:
        return
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise _refused(f"host '{host[:100]}' is not a public host")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if not address.is_global:
        raise _refused(
            f"address '{host}' is not a public address (list it in SUBSCRIPTION_ALLOWED_HOSTS)"
        )


def check_event_types(event_types: list[str]) -> None:
    """:raises InvalidField: ``/event_types/<i>`` names an unknown type."""
    for index, kind in enumerate(event_types):
        if kind not in EVENT_TYPES:
            raise InvalidField(
                f"/event_types/{index}",
                "unknown-event-type",
                f"'{kind[:64]}' is not an event type one can subscribe to.",
            )


def _refused(reason: str) -> RuleViolation:
    return RuleViolation(
        "subscription-url-refused", f"The target URL is refused: {reason}.", "/url"
    )
