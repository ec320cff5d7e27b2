"""Helpers for run-vertical tests: members that exercise given tools, starting and awaiting runs.

Waiting is polling ``GET /v1/runs/{id}`` under a bounded deadline: the deadline only turns a
hang into a readable failure, it never asserts speed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from scaicrew.app import create_app
from scaicrew.settings import Settings
from tests.api.helpers import create_crew, create_member, publish, validate_hook

FINISHED = ("succeeded", "failed")
DEADLINE = 20.0


def definition(*tools: tuple[str, str], **extra: Any) -> dict[str, Any]:
    """A definition declaring ``tools`` as ``(name, effect_class)`` pairs."""
    return {
        "objective": "Exercise the run engine.",
        "tools": [{"name": name, "effect_class": effect} for name, effect in tools],
        **extra,
    }


NOTES = definition(("notes_write", "internal"), ("notes_read", "internal"))
POSTER = definition(("http_post", "external_write"))
GETTER = definition(("http_get", "external_read"))


def published_member(
    client: httpx.Client,
    headers: dict[str, str],
    member_definition: dict[str, Any] | None = None,
    crew_id: str | None = None,
) -> dict[str, Any]:
    """Create a member (in ``crew_id`` or a new crew) and publish version 1."""
    crew_id = crew_id or create_crew(client, headers)["id"]
    member = create_member(client, headers, crew_id, definition=member_definition or NOTES)
    publish(client, headers, member["id"])
    r = client.get(f"/v1/members/{member['id']}", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def start(
    client: httpx.Client,
    headers: dict[str, str],
    member_id: str,
    run_input: dict[str, Any] | None = None,
    **body: Any,
) -> dict[str, Any]:
    r = client.post(
        f"/v1/members/{member_id}/runs", json={"input": run_input or {}, **body}, headers=headers
    )
    assert r.status_code == 202, r.text
    return dict(r.json())


def wait_for(
    client: httpx.Client,
    headers: dict[str, str],
    run_id: str,
    statuses: tuple[str, ...] = FINISHED,
    timeout: float = DEADLINE,
) -> dict[str, Any]:
    """Poll the run until its status is one of ``statuses``; return it."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/v1/runs/{run_id}", headers=headers)
        assert r.status_code == 200, r.text
        run = dict(r.json())
        if run["status"] in statuses:
            return run
        assert run["status"] not in FINISHED, f"run ended {run['status']}: {run['error']}"
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']}"
        time.sleep(0.02)


def run_to_end(
    client: httpx.Client,
    headers: dict[str, str],
    member_id: str,
    run_input: dict[str, Any] | None = None,
    **body: Any,
) -> dict[str, Any]:
    return wait_for(client, headers, start(client, headers, member_id, run_input, **body)["id"])


def events(client: httpx.Client, headers: dict[str, str], run_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/v1/runs/{run_id}/events?limit=200", headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def event_types(client: httpx.Client, headers: dict[str, str], run_id: str) -> list[str]:
    return [e["type"] for e in events(client, headers, run_id)]


def approvals_of(client: httpx.Client, headers: dict[str, str], run_id: str) -> list[Any]:
    r = client.get(f"/v1/approvals?run_id={run_id}", headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def wait_for_approvals(
    client: httpx.Client, headers: dict[str, str], run_id: str, timeout: float = DEADLINE
) -> list[Any]:
    """Poll the run's approvals, whatever their status, until there is at least one."""
    deadline = time.monotonic() + timeout
    while not (found := approvals_of(client, headers, run_id)):
        assert time.monotonic() < deadline, f"no approval for {run_id} after {timeout}s"
        time.sleep(0.05)
    return found


@contextmanager
def app_client(settings: Settings, **overrides: Any) -> Iterator[httpx.Client]:
    """A validated in-process client of an app built with ``overrides`` of ``settings``.

    Its lifespan runs the app's own in-process workers; do not use it together with the
    ``client`` fixture (whose workers would claim the same runs with other settings).
    """
    app = create_app(settings.with_changes(**overrides))
    with app.test_client() as c:
        c.event_hooks["response"] = [validate_hook]
        yield c
