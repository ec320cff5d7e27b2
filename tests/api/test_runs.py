"""Runs: start (manual, dry, idempotent), read, list, timeline, retry; offline model paths."""

from __future__ import annotations

import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from domain.kernel import Role
from tests.api.helpers import create_crew, create_member, missing_id, publish
from tests.support.openapi_check import check_problem
from tests.support.runs import (
    GETTER,
    NOTES,
    POSTER,
    app_client,
    approvals_of,
    definition,
    event_types,
    events,
    published_member,
    run_to_end,
    start,
    wait_for,
)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class TestStartRun:
    def test_a_run_is_queued_with_202_and_location_then_succeeds_with_output(self, client, tenant):
        h = tenant.headers(Role.OPERATOR)
        member = published_member(client, tenant.headers(Role.AUTHOR))
        r = client.post(
            f"/v1/members/{member['id']}/runs",
            json={"input": {"ticket": 42, "output": {"category": "billing"}}},
            headers=h,
        )
        assert r.status_code == 202, r.text
        queued = r.json()
        assert r.headers["location"] == f"/v1/runs/{queued['id']}"
        assert "idempotent-replayed" not in r.headers
        assert queued["status"] == "queued"
        assert queued["origin"] == "manual"
        assert queued["version_number"] == 1
        assert queued["version_id"] == member["active_version_id"]
        assert queued["member_id"] == member["id"] and queued["crew_id"] == member["crew_id"]
        assert queued["created_by"] == "user-operator"
        assert (queued["dry_run"], queued["depth"], queued["parent_run_id"]) == (False, 0, None)
        assert queued["started_at"] is None and queued["output"] is None

        run = wait_for(client, h, queued["id"])
        assert run["status"] == "succeeded", run["error"]
        assert run["error"] is None
        assert run["output"] == {
            "summary": "Completed with 2 tool call(s).",
            "tool_calls": 2,
            "category": "billing",
        }
        assert run["input"] == {"ticket": 42, "output": {"category": "billing"}}
        assert run["attempts"] == 1
        assert run["started_at"] is not None and run["finished_at"] is not None
        assert run["created_at"] <= run["started_at"] <= run["finished_at"]
        assert run["tokens_in"] > 0 and run["tokens_out"] > 0 and run["cost_units"] > 0

    def test_the_timeline_records_every_step(self, client, tenant):
        h = tenant.headers(Role.OPERATOR)
        member = published_member(client, tenant.headers(Role.AUTHOR))
        run = run_to_end(client, h, member["id"])
        assert event_types(client, h, run["id"]) == [
            "run.queued",
            "run.started",
            "model.replied",
            "tool.succeeded",
            "model.replied",
            "tool.succeeded",
            "model.replied",
            "run.succeeded",
        ]

    def test_the_author_role_may_start_runs_too(self, client, tenant):
        member = published_member(client, tenant.headers(Role.AUTHOR))
        start(client, tenant.headers(Role.AUTHOR), member["id"])

    def test_a_viewer_may_not_start_a_run(self, client, tenant):
        member = published_member(client, tenant.headers(Role.AUTHOR))
        r = client.post(
            f"/v1/members/{member['id']}/runs", json={}, headers=tenant.headers(Role.VIEWER)
        )
        check_problem(r, 403, "Forbidden")
        listed = client.get(f"/v1/runs?member_id={member['id']}", headers=tenant.headers())
        assert listed.json()["items"] == []
        run = start(client, tenant.headers(Role.OPERATOR), member["id"])  # an operator may
        listed = client.get(f"/v1/runs?member_id={member['id']}", headers=tenant.headers())
        assert [item["id"] for item in listed.json()["items"]] == [run["id"]]

    def test_an_unknown_member_is_not_found(self, client, tenant):
        r = client.post(f"/v1/members/{missing_id('mem')}/runs", json={}, headers=tenant.headers())
        check_problem(r, 404, "NotFound")

    def test_an_empty_body_runs_with_an_empty_input(self, client, tenant):
        member = published_member(client, tenant.headers(Role.AUTHOR))
        r = client.post(f"/v1/members/{member['id']}/runs", json={}, headers=tenant.headers())
        assert r.status_code == 202, r.text
        assert r.json()["input"] == {}

    @pytest.mark.parametrize(
        "body",
        [{"input": "text"}, {"input": [1]}, {"dry_run": "yes"}, {"input": {}, "extra": 1}],
        ids=["string-input", "array-input", "string-dry-run", "unknown-field"],
    )
    def test_a_malformed_body_is_a_validation_error(self, client, tenant, body):
        member = published_member(client, tenant.headers(Role.AUTHOR))
        r = client.post(f"/v1/members/{member['id']}/runs", json=body, headers=tenant.headers())
        check_problem(r, 400, "ValidationError")

    def test_a_member_without_a_published_version_has_nothing_to_run(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"], definition=NOTES)
        r = client.post(f"/v1/members/{member['id']}/runs", json={}, headers=h)
        body = check_problem(r, 409, "Conflict")
        assert body["type"].endswith("/problems/nothing-to-run")
        assert member["id"] in body["detail"]

    def test_a_dry_run_without_a_draft_has_nothing_to_run(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = published_member(client, h)
        r = client.post(f"/v1/members/{member['id']}/runs", json={"dry_run": True}, headers=h)
        body = check_problem(r, 409, "Conflict")
        assert body["type"].endswith("/problems/nothing-to-run")


class TestDryRun:
    def test_a_dry_run_executes_the_draft_with_external_tools_stubbed_and_no_approval(
        self, client, tenant
    ):
        h = tenant.headers(Role.AUTHOR)
        member = published_member(client, h, NOTES)
        draft = definition(
            ("http_get", "external_read"),
            ("http_post", "external_write"),
            ("notes_write", "internal"),
        )
        assert client.put(f"/v1/members/{member['id']}/draft", json=draft, headers=h).is_success
        run = run_to_end(
            client,
            h,
            member["id"],
            {
                "url": "https://example.invalid/hook",
                "tool_args": {"notes_write": {"key": "dry", "value": "written for real"}},
            },
            dry_run=True,
        )
        assert run["status"] == "succeeded", run["error"]
        assert run["dry_run"] is True
        assert run["version_number"] == 2  # the draft, not the published version 1
        assert run["output"]["tool_calls"] == 3
        assert approvals_of(client, h, run["id"]) == []
        tools = [e["data"] for e in events(client, h, run["id"]) if e["type"] == "tool.succeeded"]
        assert [t["tool"] for t in tools] == ["http_get", "http_post", "notes_write"]
        assert all(t["dry_run"] for t in tools)
        assert '"stubbed": "http_get"' in tools[0]["result"]
        assert '"stubbed": "http_post"' in tools[1]["result"]
        assert '"written": true' in tools[2]["result"]  # internal tools really run

    def test_a_dry_run_of_a_never_published_member_runs_its_draft(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"], definition=POSTER)
        run = run_to_end(client, h, member["id"], {"url": "https://x.invalid"}, dry_run=True)
        assert run["status"] == "succeeded", run["error"]
        assert (run["version_number"], run["dry_run"]) == (1, True)
        assert approvals_of(client, h, run["id"]) == []


class TestIdempotencyKey:
    def test_the_same_key_and_body_replays_the_original_run(self, client, tenant):
        h = {**tenant.headers(Role.OPERATOR), "Idempotency-Key": "order-1:attempt.A"}
        member = published_member(client, tenant.headers(Role.AUTHOR))
        url = f"/v1/members/{member['id']}/runs"
        first = client.post(url, json={"input": {"n": 1}}, headers=h)
        assert first.status_code == 202, first.text
        assert "idempotent-replayed" not in first.headers
        wait_for(client, h, first.json()["id"])

        again = client.post(url, json={"input": {"n": 1}}, headers=h)
        assert again.status_code == 202, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["id"] == first.json()["id"]
        assert again.headers["location"] == first.headers["location"]
        assert again.json()["status"] == "succeeded"  # the original run, as it is now
        runs = client.get(f"/v1/runs?member_id={member['id']}", headers=h).json()["items"]
        assert [r["id"] for r in runs] == [first.json()["id"]]

    def test_the_same_key_with_another_body_is_a_conflict(self, client, tenant):
        h = {**tenant.headers(Role.OPERATOR), "Idempotency-Key": "k-2"}
        member = published_member(client, tenant.headers(Role.AUTHOR))
        url = f"/v1/members/{member['id']}/runs"
        assert client.post(url, json={"input": {"n": 1}}, headers=h).status_code == 202
        for body in ({"input": {"n": 2}}, {"input": {"n": 1}, "dry_run": True}):
            r = client.post(url, json=body, headers=h)
            problem = check_problem(r, 409, "Conflict")
            assert problem["type"].endswith("/problems/idempotency-key-reused")
        other = published_member(client, tenant.headers(Role.AUTHOR))
        r = client.post(f"/v1/members/{other['id']}/runs", json={"input": {"n": 1}}, headers=h)
        check_problem(r, 409, "Conflict")

    def test_concurrent_requests_with_one_key_create_one_run(self, client, tenant):
        member = published_member(client, tenant.headers(Role.AUTHOR))
        h = {**tenant.headers(Role.OPERATOR), "Idempotency-Key": "burst"}
        barrier = threading.Barrier(8)

        def send(_: int) -> Any:
            barrier.wait(timeout=10)
            return client.post(
                f"/v1/members/{member['id']}/runs", json={"input": {"n": 1}}, headers=h
            )

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(send, range(8)))
        assert [r.status_code for r in answers] == [202] * 8, [r.text for r in answers]
        assert len({r.json()["id"] for r in answers}) == 1
        replayed = [r.headers.get("idempotent-replayed") for r in answers]
        assert replayed.count(None) == 1 and replayed.count("true") == 7
        runs = client.get(f"/v1/runs?member_id={member['id']}", headers=h).json()["items"]
        assert len(runs) == 1

    def test_keys_are_scoped_to_the_workspace(self, client, make_tenant):
        a, b = make_tenant(), make_tenant()
        runs = []
        for t in (a, b):
            member = published_member(client, t.headers(Role.AUTHOR))
            r = client.post(
                f"/v1/members/{member['id']}/runs",
                json={"input": {}},
                headers={**t.headers(), "Idempotency-Key": "shared"},
            )
            assert r.status_code == 202 and "idempotent-replayed" not in r.headers
            runs.append(r.json()["id"])
        assert runs[0] != runs[1]

    @pytest.mark.parametrize("key", ["", "has space", "x" * 129, "ünïcode"])
    def test_a_malformed_key_is_a_validation_error(self, client, tenant, key):
        member = published_member(client, tenant.headers(Role.AUTHOR))
        r = client.post(
            f"/v1/members/{member['id']}/runs",
            json={},
            headers={**tenant.headers(), "Idempotency-Key": key.encode()},
        )
        check_problem(r, 400, "ValidationError")


INPUT_SCHEMA = {
    "type": "object",
    "required": ["ticket"],
    "properties": {"ticket": {"type": "string", "minLength": 3}, "priority": {"enum": [1, 2]}},
}


class TestInputSchema:
    def test_an_input_that_breaks_the_schema_is_a_conflict_with_every_error(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = published_member(client, h, {**NOTES, "input_schema": INPUT_SCHEMA})
        url = f"/v1/members/{member['id']}/runs"
        r = client.post(url, json={"input": {"priority": 3}}, headers=h)
        body = check_problem(r, 409, "Conflict")
        assert body["type"].endswith("/problems/input-schema-mismatch")
        errors = body["error"]["details"]["errors"]
        assert {(e["pointer"], e["reason"]) for e in errors} == {
            ("/input", "required"),
            ("/input/priority", "enum"),
        }
        assert all(e["location"] == "body" and e["message"] for e in errors)

        r = client.post(url, json={"input": {"ticket": 12}}, headers=h)
        errors = check_problem(r, 409, "Conflict")["error"]["details"]["errors"]
        assert [(e["pointer"], e["reason"]) for e in errors] == [("/input/ticket", "type")]
        assert client.get(f"/v1/runs?member_id={member['id']}", headers=h).json()["items"] == []

        ok = run_to_end(client, h, member["id"], {"ticket": "T-100", "priority": 2})
        assert ok["status"] == "succeeded", ok["error"]

    def test_the_schema_is_returned_with_the_definition(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = published_member(client, h, {**NOTES, "input_schema": INPUT_SCHEMA})
        version = client.get(f"/v1/members/{member['id']}/versions/1", headers=h).json()
        assert version["definition"]["input_schema"] == INPUT_SCHEMA

    def test_a_dry_run_checks_the_drafts_schema(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = published_member(client, h, NOTES)
        r = client.put(
            f"/v1/members/{member['id']}/draft",
            json={**NOTES, "input_schema": INPUT_SCHEMA},
            headers=h,
        )
        assert r.status_code == 200, r.text
        url = f"/v1/members/{member['id']}/runs"
        r = client.post(url, json={"input": {}, "dry_run": True}, headers=h)
        check_problem(r, 409, "Conflict")
        assert client.post(url, json={"input": {}}, headers=h).status_code == 202  # version 1

    @pytest.mark.parametrize(
        "schema",
        [
            {"type": "nonsense"},
            {"properties": {"a": {"minLength": -1}}},
            {"$ref": "https://example.com/schema.json"},
            {"properties": {"a": {"$ref": "file:///etc/passwd"}}},
        ],
        ids=["bad-type", "negative-min-length", "remote-ref", "nested-remote-ref"],
    )
    def test_an_invalid_input_schema_is_rejected_when_the_draft_is_saved(
        self, client, tenant, schema
    ):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"], definition=NOTES)
        r = client.put(
            f"/v1/members/{member['id']}/draft", json={**NOTES, "input_schema": schema}, headers=h
        )
        body = check_problem(r, 409, "Conflict")
        assert body["type"].endswith("/problems/invalid-input-schema")
        assert body["error"]["details"]["pointer"].endswith("/input_schema")
        r = client.post(
            "/v1/members",
            json={
                "crew_id": member["crew_id"],
                "name": "Other",
                "definition": {**NOTES, "input_schema": schema},
            },
            headers=h,
        )
        check_problem(r, 409, "Conflict")


class TestCatalogEffectClasses:
    @pytest.mark.parametrize(
        ("tool", "wrong"),
        [
            ("http_get", "internal"),
            ("http_post", "external_read"),
            ("notes_write", "external_write"),
            ("notes_read", "spend"),
        ],
    )
    def test_a_catalog_tool_declared_with_another_effect_class_is_rejected(
        self, client, tenant, tool, wrong
    ):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        bad = definition(("notes_write", "internal"), (tool, wrong))
        if tool == "notes_write":
            bad = definition((tool, wrong))
        r = client.post(
            "/v1/members", json={"crew_id": crew["id"], "name": "M", "definition": bad}, headers=h
        )
        body = check_problem(r, 409, "Conflict")
        assert body["type"].endswith("/problems/tool-effect-class")
        assert body["error"]["details"]["pointer"].endswith("/effect_class")
        member = create_member(client, h, crew["id"], definition=NOTES)
        r = client.put(f"/v1/members/{member['id']}/draft", json=bad, headers=h)
        check_problem(r, 409, "Conflict")


def _runs(client: Any, headers: dict[str, str], query: str) -> list[str]:
    r = client.get(f"/v1/runs?{query}", headers=headers)
    assert r.status_code == 200, r.text
    return [run["id"] for run in r.json()["items"]]


class TestListRuns:
    def test_filters_select_runs_and_pages_walk_them_newest_first(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew_a, crew_b = create_crew(client, h), create_crew(client, h)
        ok = published_member(client, h, NOTES, crew_a["id"])
        broken = published_member(client, h, NOTES, crew_b["id"])
        before = datetime.now(UTC) - timedelta(seconds=1)
        succeeded = [run_to_end(client, h, ok["id"])["id"] for _ in range(3)]
        failed = run_to_end(client, h, broken["id"], {"simulate": "model_error"})["id"]
        after = datetime.now(UTC) + timedelta(seconds=1)
        everything = [failed, *reversed(succeeded)]
        viewer = tenant.headers(Role.VIEWER)

        assert _runs(client, viewer, "limit=100") == everything
        assert _runs(client, viewer, f"member_id={ok['id']}") == everything[1:]
        assert _runs(client, viewer, f"crew_id={crew_b['id']}") == [failed]
        assert _runs(client, viewer, "status=failed") == [failed]
        assert _runs(client, viewer, "status=succeeded") == everything[1:]
        assert _runs(client, viewer, "status=running") == []
        assert _runs(client, viewer, "origin=manual") == everything
        assert _runs(client, viewer, "origin=handoff") == []
        assert _runs(client, viewer, f"parent_run_id={failed}") == []
        assert _runs(client, viewer, f"member_id={ok['id']}&status=failed") == []
        window = f"created_after={iso(before)}&created_before={iso(after)}"
        assert _runs(client, viewer, window.replace("+", "%2B")) == everything
        assert _runs(client, viewer, f"created_after={iso(after)}") == []
        assert _runs(client, viewer, f"created_before={iso(before)}") == []
        offset = (after + timedelta(hours=2)).astimezone(timezone(timedelta(hours=2))).isoformat()
        assert _runs(client, viewer, "created_before=" + offset.replace("+", "%2B")) == everything

        seen, cursor = [], None
        while True:
            query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
            page = client.get(f"/v1/runs?{query}", headers=viewer).json()
            assert len(page["items"]) <= 2
            seen += [run["id"] for run in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == everything

    def test_runs_of_another_workspace_never_show(self, client, make_tenant):
        a, b = make_tenant(), make_tenant()
        member = published_member(client, a.headers())
        run = start(client, a.headers(), member["id"])
        assert _runs(client, b.headers(), "") == []
        assert _runs(client, b.headers(), f"member_id={member['id']}") == []
        assert _runs(client, a.headers(), f"member_id={member['id']}") == [run["id"]]

    @pytest.mark.parametrize(
        "query",
        [
            "status=done",
            "origin=cron",
            "member_id=crw_x",
            "created_after=yesterday",
            "created_after=2026-01-01T00:00:00",
            "limit=0",
        ],
    )
    def test_malformed_filters_are_validation_errors(self, client, tenant, query):
        check_problem(
            client.get(f"/v1/runs?{query}", headers=tenant.headers()), 400, "ValidationError"
        )


class TestGetRunAndEvents:
    def test_an_unknown_run_is_not_found(self, client, tenant):
        for url in (f"/v1/runs/{missing_id('run')}", f"/v1/runs/{missing_id('run')}/events"):
            check_problem(client.get(url, headers=tenant.headers(Role.VIEWER)), 404, "NotFound")

    def test_events_have_increasing_seq_and_page_by_after_seq(self, client, tenant):
        h = tenant.headers(Role.VIEWER)
        member = published_member(client, tenant.headers(Role.AUTHOR))
        run = run_to_end(client, tenant.headers(), member["id"])
        everything = events(client, h, run["id"])
        assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))
        assert all(a["at"] <= b["at"] for a, b in zip(everything, everything[1:], strict=False))
        assert everything[0]["data"] == {"origin": "manual", "dry_run": False}

        paged, after = [], 0
        while after is not None:
            r = client.get(f"/v1/runs/{run['id']}/events?after_seq={after}&limit=3", headers=h)
            assert r.status_code == 200, r.text
            page = r.json()
            assert len(page["items"]) <= 3
            paged += page["items"]
            after = page["next_after_seq"]
            if after is not None:
                assert after == page["items"][-1]["seq"]
        assert paged == everything
        tail = client.get(f"/v1/runs/{run['id']}/events?after_seq=6", headers=h).json()
        assert [e["seq"] for e in tail["items"]] == list(range(7, len(everything) + 1))
        assert tail["next_after_seq"] is None
        beyond = client.get(f"/v1/runs/{run['id']}/events?after_seq=1000", headers=h).json()
        assert beyond == {"items": [], "next_after_seq": None}

    @pytest.mark.parametrize("query", ["after_seq=-1", "after_seq=x", "limit=0", "limit=1000"])
    def test_malformed_event_queries_are_validation_errors(self, client, tenant, query):
        member = published_member(client, tenant.headers(Role.AUTHOR))
        run = start(client, tenant.headers(), member["id"])
        r = client.get(f"/v1/runs/{run['id']}/events?{query}", headers=tenant.headers())
        check_problem(r, 400, "ValidationError")


class TestRetry:
    def test_retry_is_not_implemented_for_an_existing_run(self, client, tenant):
        member = published_member(client, tenant.headers(Role.AUTHOR))
        run = run_to_end(client, tenant.headers(), member["id"])
        for role in (Role.OPERATOR, Role.ADMIN):
            r = client.post(f"/v1/runs/{run['id']}/retry", headers=tenant.headers(role))
            body = check_problem(r, 501, "NotImplemented")
            assert "start a new run" in body["detail"]
        runs = _runs(client, tenant.headers(), f"member_id={member['id']}")
        assert runs == [run["id"]]

    def test_retry_of_an_unknown_run_is_not_found(self, client, tenant):
        r = client.post(f"/v1/runs/{missing_id('run')}/retry", headers=tenant.headers())
        check_problem(r, 404, "NotFound")

    def test_retry_needs_the_operator_role(self, client, tenant):
        member = published_member(client, tenant.headers(Role.AUTHOR))
        run = start(client, tenant.headers(), member["id"])
        r = client.post(f"/v1/runs/{run['id']}/retry", headers=tenant.headers(Role.VIEWER))
        check_problem(r, 403, "Forbidden")


class TestOfflineModelPaths:
    def test_a_model_error_fails_the_run_with_a_readable_error(self, client, tenant):
        h = tenant.headers()
        member = published_member(client, h)
        run = run_to_end(client, h, member["id"], {"simulate": "model_error"})
        assert run["status"] == "failed"
        assert run["error"]["code"] == "ModelError"
        assert "simulate: model_error" in run["error"]["message"]
        assert run["output"] is None and run["finished_at"] is not None
        assert event_types(client, h, run["id"])[-1] == "run.failed"

    def test_a_declared_tool_without_an_implementation_fails_the_run(self, client, tenant):
        h = tenant.headers()
        member = published_member(client, h, definition(("read_queue", "external_read")))
        run = run_to_end(client, h, member["id"])
        assert run["status"] == "failed"
        assert run["error"]["code"] == "ToolFailed"
        assert "read_queue" in run["error"]["message"]
        assert "no built-in implementation" in run["error"]["message"]

    def test_tool_arguments_that_break_the_tool_schema_fail_the_run(self, client, tenant):
        h = tenant.headers()
        member = published_member(client, h, NOTES)
        run = run_to_end(
            client, h, member["id"], {"tool_args": {"notes_write": {"key": "k", "value": 7}}}
        )
        assert run["status"] == "failed"
        assert run["error"]["code"] == "ToolFailed"
        assert "invalid arguments" in run["error"]["message"]

    def test_a_member_without_tools_answers_at_once(self, client, tenant):
        h = tenant.headers()
        member = published_member(client, h, definition())
        run = run_to_end(client, h, member["id"], {"output": {"answer": 42}})
        assert run["status"] == "succeeded"
        assert run["output"] == {
            "summary": "Completed with 0 tool call(s).",
            "tool_calls": 0,
            "answer": 42,
        }


class TestNotes:
    def test_notes_written_by_one_run_are_read_by_the_next_in_the_same_workspace_only(
        self, client, make_tenant
    ):
        a, b = make_tenant(), make_tenant()
        writer_def = definition(("notes_write", "internal"))
        reader_def = definition(("notes_read", "internal"))
        writer = published_member(client, a.headers(), writer_def)
        note = {"notes_write": {"key": "greeting", "value": "hello from A"}}
        assert (
            run_to_end(client, a.headers(), writer["id"], {"tool_args": note})["status"]
            == "succeeded"
        )

        def read_back(t: Any) -> dict[str, Any]:
            reader = published_member(client, t.headers(), reader_def)
            run = run_to_end(
                client,
                t.headers(),
                reader["id"],
                {"tool_args": {"notes_read": {"key": "greeting"}}},
            )
            assert run["status"] == "succeeded", run["error"]
            tool = next(
                e for e in events(client, t.headers(), run["id"]) if e["type"] == "tool.succeeded"
            )
            return dict(tool["data"])

        assert json.loads(read_back(a)["result"]) == {
            "key": "greeting",
            "found": True,
            "value": "hello from A",
        }
        assert json.loads(read_back(b)["result"]) == {
            "key": "greeting",
            "found": False,
            "value": None,
        }

    def test_writing_a_note_again_replaces_it(self, client, tenant):
        h = tenant.headers()
        member = published_member(client, h, NOTES)
        for value in ("one", "two"):
            args = {"notes_write": {"key": "k", "value": value}, "notes_read": {"key": "k"}}
            run = run_to_end(client, h, member["id"], {"tool_args": args})
            results = [
                e["data"]["result"]
                for e in events(client, h, run["id"])
                if e["type"] == "tool.succeeded"
            ]
            assert f'"value": "{value}"' in results[1]


def test_a_published_version_keeps_running_its_own_program(client, tenant):
    """Runs pin the active version: a later draft does not change what a manual run does."""
    h = tenant.headers(Role.AUTHOR)
    member = published_member(client, h, definition(("notes_write", "internal")))
    r = client.put(f"/v1/members/{member['id']}/draft", json=POSTER, headers=h)
    assert r.status_code == 200
    run = run_to_end(client, h, member["id"])
    assert (run["status"], run["version_number"], run["output"]["tool_calls"]) == (
        "succeeded",
        1,
        1,
    )
    publish(client, h, member["id"])
    paused = wait_for(client, h, start(client, h, member["id"])["id"], ("waiting_approval",))
    assert paused["version_number"] == 2


class TestDefaultsAndUnreachablePeers:
    def test_the_default_empty_allow_list_refuses_every_host(self, client, tenant):
        member = published_member(client, tenant.headers(), GETTER)
        run = run_to_end(client, tenant.headers(), member["id"], {"url": "http://127.0.0.1:9/x"})
        assert run["status"] == "failed"
        assert run["error"] == {
            "code": "ToolFailed",
            "message": "Host '127.0.0.1' is not on the tool allow-list.",
        }

    def test_an_unreachable_model_endpoint_fails_the_run(self, settings, tenant):
        # no ``client`` here: only this app's workers may claim the run
        with socket.socket() as sock:  # a port nobody listens on
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with app_client(
            settings,
            model="openai",
            model_base_url=f"http://127.0.0.1:{port}/v1",
            model_timeout_seconds=1.0,
        ) as api:
            member = published_member(api, tenant.headers(), definition())
            run = run_to_end(api, tenant.headers(), member["id"])
        assert run["status"] == "failed"
        assert run["error"] == {
            "code": "ModelError",
            "message": "The model endpoint is unreachable (ConnectError).",
        }
