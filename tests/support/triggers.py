"""Helpers for trigger tests: published members, triggers and signed webhook deliveries."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from domain.triggers import sign
from tests.api.helpers import create_crew, create_member, publish, unique


def published_member(
    client: httpx.Client, headers: dict[str, str], definition: dict[str, Any] | None = None
) -> dict[str, Any]:
    crew = create_crew(client, headers)
    member = create_member(client, headers, crew["id"], definition=definition)
    publish(client, headers, member["id"])
    return dict(member)


def create_trigger(
    client: httpx.Client, headers: dict[str, str], member_id: str, kind: str, **extra: Any
) -> dict[str, Any]:
    body = {"kind": kind, "member_id": member_id, "name": unique("Trigger"), **extra}
    r = client.post("/v1/triggers", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def ingress_path(trigger: dict[str, Any]) -> str:
    return f"/v1/webhooks/{trigger['id']}"


def signed_headers(
    secret: str, raw: bytes, *, at: int | None = None, key: str | None = None
) -> dict[str, str]:
    timestamp = str(int(time.time()) if at is None else at)
    headers = {
        "Content-Type": "application/json",
        "X-ScaiCrew-Timestamp": timestamp,
        "X-ScaiCrew-Signature": sign(secret, timestamp, raw),
    }
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def deliver(
    client: httpx.Client,
    trigger: dict[str, Any],
    body: Any,
    *,
    secret: str | None = None,
    at: int | None = None,
    key: str | None = None,
) -> httpx.Response:
    """POST ``body`` to the trigger's ingress, signed with its secret (or ``secret``)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    headers = signed_headers(secret or trigger["secret"], raw, at=at, key=key)
    return client.post(ingress_path(trigger), content=raw, headers=headers)
