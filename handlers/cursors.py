"""Opaque page cursors: the domain's position, signed and bound to the list and workspace.

A cursor is ``base64url(version byte + position + tag)`` where ``tag`` is the first 16 bytes of
HMAC-SHA256, keyed from ``SESSION_SECRET``, over the workspace id, the request path and the
position. So a client cannot make one up, alter one, or use one from another list (another
path: ``/v1/crews`` versus ``/v1/runs``, or another member's versions) or another workspace:
each answers ``404 InvalidCursor``: no page is at that cursor. Not 400: a cursor is opaque, so
no schema can tell a forged one from a real one, and a schema-valid request that fails a rule
the schema cannot state is not a malformed request. And like an id from another workspace, a
foreign cursor is indistinguishable from a missing one. The domain never sees a position it
did not issue.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from connexion import request
from connexion.context import context

from handlers.context import app_context
from handlers.problems import ApiError

_VERSION = b"\x01"
_TAG_BYTES = 16
_PURPOSE = b"scaicrew page cursor v1"


def _key() -> bytes:
    secret = app_context().settings.session.secret.get_secret_value().encode("utf-8")
    return hmac.new(secret, _PURPOSE, hashlib.sha256).digest()


def _binding() -> bytes:
    token_info = context.get("token_info") or {}
    workspace = str(token_info.get("workspace_id", ""))
    return f"{workspace}\n{request.url.path}\n".encode()


def _tag(position: bytes) -> bytes:
    return hmac.new(_key(), _binding() + position, hashlib.sha256).digest()[:_TAG_BYTES]


def encode(position: str | None) -> str | None:
    """The cursor a client receives for the domain's ``position`` (None stays None)."""
    if position is None:
        return None
    raw = position.encode("utf-8")
    return base64.urlsafe_b64encode(_VERSION + raw + _tag(raw)).rstrip(b"=").decode("ascii")


def decode(cursor: str | None) -> str | None:
    """The domain position a cursor of this list and workspace stands for.

    :raises ApiError: 404 ``InvalidCursor`` for anything this server did not issue here.
    """
    if cursor is None:
        return None
    try:
        data = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        data = b""
    raw, tag = data[1:-_TAG_BYTES], data[-_TAG_BYTES:]
    if (
        len(data) <= 1 + _TAG_BYTES
        or data[:1] != _VERSION
        or not hmac.compare_digest(tag, _tag(raw))
    ):
        raise _invalid()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # pragma: no cover (a valid tag means we encoded it)
        raise _invalid() from None


def _problem(reason: str) -> dict[str, str]:
    return {"location": "query", "name": "cursor", "reason": "cursor", "message": reason}


def _invalid() -> ApiError:
    reason = "not a cursor this server issued for this list"
    return ApiError(
        404,
        "query cursor: this is not a cursor from a previous page of this list; "
        "start again without a cursor.",
        details={
            "errors": [
                {"location": "query", "name": "cursor", "reason": "cursor", "message": reason}
            ]
        },
        type_slug="invalid-cursor",
        code="InvalidCursor",
    )
