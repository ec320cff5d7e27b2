"""Workspace API keys (admins): create (the secret is shown once), list, revoke."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.access import ApiKey
from domain.kernel import Role
from handlers._http import actor, ok, page, page_body, timestamp, use_cases
from handlers.context import app_context
from handlers.problems import ApiError

NO_STORE = {"Cache-Control": "no-store"}


def _key(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "role": key.role.label,
        "created_by": key.created_by,
        "created_at": timestamp(key.created_at),
        "expires_at": timestamp(key.expires_at),
        "last_used_at": timestamp(key.last_used_at),
    }


def _expiry(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
        if parsed.tzinfo is None:
            raise ValueError("no offset")
    except ValueError:
        reason = "an RFC 3339 date-time with a UTC offset is required"
        raise ApiError(
            400,
            f"body /expires_at: {reason}.",
            details={
                "errors": [
                    {
                        "location": "body",
                        "pointer": "/expires_at",
                        "reason": "format",
                        "message": reason,
                    }
                ]
            },
        ) from None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # past the year 9999 in UTC: as good as never
        return datetime.max.replace(tzinfo=UTC)


def create_api_key(token_info: dict[str, Any], body: dict[str, Any]) -> Any:
    issued = use_cases().access.create_api_key(
        actor(token_info),
        body["name"],
        Role.parse(body["role"]),
        _expiry(body.get("expires_at")),
    )
    headers = {**NO_STORE, "Location": f"/v1/api-keys/{issued.key.id}"}
    return ok({**_key(issued.key), "secret": issued.secret}, 201, headers)


def list_api_keys(token_info: dict[str, Any], limit: int = 50, cursor: str | None = None) -> Any:
    result = use_cases().access.list_api_keys(actor(token_info), page(limit, cursor))
    return ok(page_body(result, _key))


def revoke_api_key(token_info: dict[str, Any], api_key_id: str) -> Any:
    use_cases().access.revoke_api_key(actor(token_info), api_key_id)
    app_context().credentials.clear()  # this process refuses the key at once (ADR 0032)
    return None, 204
