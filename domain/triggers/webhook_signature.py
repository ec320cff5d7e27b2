"""The webhook signature scheme: HMAC-SHA256 over ``"{timestamp}.{raw body}"``.

A sender signs each delivery with the trigger's secret and sends

    X-ScaiCrew-Timestamp: <unix seconds>
    X-ScaiCrew-Signature: sha256=<lower-case hex HMAC-SHA256(secret, timestamp + "." + body)>

(several comma-separated signatures while the sender rotates its secret: any one may match)

The receiver recomputes the HMAC over the exact bytes received, compares in constant time, and
accepts timestamps at most ``WINDOW_SECONDS`` away from its clock in either direction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

WINDOW_SECONDS = 300
PREFIX = "sha256="


def new_secret() -> str:
    """A fresh webhook secret (256 random bits), as shown once to the trigger's author."""
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-ScaiCrew-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, "sha256")
    return PREFIX + mac.hexdigest()


def refusal(secret: str, timestamp: str, signature: str, body: bytes, now: datetime) -> str | None:
    """Why the delivery must be refused (``bad-signature``, ``stale-timestamp``), or None.

    The signature is checked first, so a correctly signed but old delivery (a replay from
    outside the window) is told apart from a forgery in the invocation log.
    """
    if not timestamp.isdigit() or len(timestamp) > 12:
        return "bad-timestamp"
    expected = sign(secret, timestamp, body).encode("ascii")
    # A sender rotating its secret signs with both for a while (``sha256=<new>,sha256=<old>``,
    # ADR 0045): any one of at most four matching is enough.
    candidates = [part.strip().lower().encode("utf-8") for part in signature.split(",")[:4]]
    matches = [hmac.compare_digest(expected, candidate) for candidate in candidates]  # each one
    if not any(matches):
        return "bad-signature"
    if abs(now.timestamp() - int(timestamp)) > WINDOW_SECONDS:
        return "stale-timestamp"
    return None


def body_hash(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()
