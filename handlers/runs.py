"""Runs: start, read, timeline, cancel; retry is deferred (501)."""

from __future__ import annotations

from typing import Any

from domain.runs import RunFilter, RunOrigin, RunStatus
from handlers import serialise
from handlers._http import actor, instant, ok, page, page_body, request_header, use_cases
from handlers.problems import ApiError


def start_run(token_info: dict[str, Any], member_id: str, body: dict[str, Any]) -> Any:
    run, replayed = use_cases().runs.start_run(
        actor(token_info),
        member_id,
        body.get("input") or {},
        dry_run=bool(body.get("dry_run", False)),
        idempotency_key=request_header("Idempotency-Key"),
    )
    headers = {"Location": f"/v1/runs/{run.id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return ok(serialise.run(run), 202, headers)


def list_runs(
    token_info: dict[str, Any],
    limit: int = 50,
    cursor: str | None = None,
    member_id: str | None = None,
    crew_id: str | None = None,
    status: str | None = None,
    origin: str | None = None,
    parent_run_id: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    include_total: bool = False,
) -> Any:
    where = RunFilter(
        member_id=member_id,
        crew_id=crew_id,
        status=None if status is None else RunStatus(status),
        origin=None if origin is None else RunOrigin(origin),
        parent_run_id=parent_run_id,
        created_after=instant("created_after", created_after),
        created_before=instant("created_before", created_before),
    )
    result = use_cases().runs.list_runs(
        actor(token_info), page(limit, cursor, include_total), where
    )
    return ok(page_body(result, serialise.run))


def get_run(token_info: dict[str, Any], run_id: str) -> Any:
    return ok(serialise.run(use_cases().runs.get_run(actor(token_info), run_id)))


def list_run_events(
    token_info: dict[str, Any], run_id: str, after_seq: int = 0, limit: int = 50
) -> Any:
    events, next_after = use_cases().runs.list_run_events(
        actor(token_info), run_id, after_seq, limit
    )
    return ok({"items": [serialise.run_event(e) for e in events], "next_after_seq": next_after})


def cancel_run(token_info: dict[str, Any], run_id: str) -> Any:
    return ok(serialise.run(use_cases().runs.cancel_run(actor(token_info), run_id)))


def retry_run(token_info: dict[str, Any], run_id: str) -> Any:
    use_cases().runs.check_retryable(actor(token_info), run_id)
    raise ApiError(501, "Run retry is not implemented yet; start a new run instead.")
