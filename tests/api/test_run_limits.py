"""Run deadlines and approval expiry over HTTP: the definition's limits are validated (400
naming the field) and kept; an approval expires by itself (the workers' sweep), its run fails
with ``ApprovalExpired`` and deciding it answers 409."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from domain.kernel import Role
from tests.api.helpers import create_crew
from tests.support.openapi_check import check_problem
from tests.support.runs import (
    POSTER,
    app_client,
    published_member,
    start,
    wait_for,
    wait_for_approvals,
)


@pytest.fixture(scope="module")
def api(settings: Any) -> Iterator[httpx.Client]:
    with app_client(settings, run_sweep_seconds=0.2, worker_poll_seconds=0.1) as c:
        yield c


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("max_run_seconds", 0, "minimum"),
        ("max_run_seconds", 604801, "maximum"),
        ("approval_timeout_seconds", -1, "minimum"),
        ("approval_timeout_seconds", 2592001, "maximum"),
        ("approval_timeout_seconds", "60", "type"),
        ("on_approval_timeout", "ignore", "enum"),
    ],
)
def test_limits_out_of_range_answer_400_naming_the_field(api, tenant, field, value, reason):
    h = tenant.headers(Role.AUTHOR)
    crew = create_crew(api, h)
    r = api.post(
        "/v1/members",
        json={
            "crew_id": crew["id"],
            "name": "Limited",
            "definition": {**POSTER, field: value},
        },
        headers=h,
    )
    body = check_problem(r, 400, "ValidationError")
    [error] = body["error"]["details"]["errors"]
    assert (error["pointer"], error["reason"]) == (f"/definition/{field}", reason)


def test_an_undecided_approval_expires_and_fails_its_run(api, tenant):
    definition = {**POSTER, "approval_timeout_seconds": 1, "max_run_seconds": 600}
    member = published_member(api, tenant.headers(Role.AUTHOR), definition)
    version = api.get(f"/v1/members/{member['id']}/versions/1", headers=tenant.headers()).json()
    assert version["definition"]["approval_timeout_seconds"] == 1
    assert version["program"]["max_run_seconds"] == 600

    h = tenant.headers(Role.OPERATOR)
    run = start(api, h, member["id"], {"url": "http://127.0.0.1:9/"})
    # A loaded machine can let the one second pass between two polls: wait for the approval
    # itself, which outlives its expiry, rather than for the short waiting_approval window.
    [approval] = wait_for_approvals(api, h, run["id"])
    assert approval["expires_at"] is not None

    failed = wait_for(api, h, run["id"], ("failed",), timeout=10)
    assert failed["error"]["code"] == "ApprovalExpired"
    expired = api.get(f"/v1/approvals/{approval['id']}", headers=h).json()
    assert expired["status"] == "expired"
    check_problem(api.post(f"/v1/approvals/{approval['id']}/approve", headers=h), 409, "Conflict")
