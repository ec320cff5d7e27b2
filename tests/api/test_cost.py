"""GET /v1/cost: run counts, tokens and cost units per member over a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.kernel import Role
from tests.support.openapi_check import check_problem
from tests.support.runs import NOTES, definition, published_member, run_to_end


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def cost(client: Any, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    r = client.get(f"/v1/cost{'?' + query if query else ''}", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


class TestCost:
    def test_a_workspace_without_runs_costs_nothing(self, client, tenant):
        body = cost(client, tenant.headers(Role.VIEWER))
        assert body["members"] == []
        assert body["total"] == {"runs": 0, "tokens_in": 0, "tokens_out": 0, "cost_units": 0}
        start = datetime.fromisoformat(body["from"])
        end = datetime.fromisoformat(body["to"])
        assert end - start == timedelta(days=30)  # the default window

    def test_runs_and_model_usage_roll_up_per_member(self, client, tenant):
        h = tenant.headers()
        before = datetime.now(UTC) - timedelta(seconds=1)
        busy = published_member(client, h, NOTES)
        quiet = published_member(client, h, definition())
        failing = published_member(client, h, definition())
        runs = [run_to_end(client, h, busy["id"]) for _ in range(2)]
        runs.append(run_to_end(client, h, quiet["id"]))
        failed = run_to_end(client, h, failing["id"], {"simulate": "model_error"})
        assert failed["status"] == "failed"
        after = datetime.now(UTC) + timedelta(seconds=1)

        body = cost(client, tenant.headers(Role.VIEWER), f"from={iso(before)}&to={iso(after)}")
        assert body["from"] == iso(before) and body["to"] == iso(after)
        by_member = {m["member_id"]: m for m in body["members"]}
        assert set(by_member) == {busy["id"], quiet["id"], failing["id"]}
        for member, mine in ((busy, runs[:2]), (quiet, runs[2:])):
            row = by_member[member["id"]]
            assert row["runs"] == len(mine)
            assert row["tokens_in"] == sum(r["tokens_in"] for r in mine) > 0
            assert row["tokens_out"] == sum(r["tokens_out"] for r in mine) > 0
            assert row["cost_units"] == pytest.approx(sum(r["cost_units"] for r in mine))
        # a run whose model failed is counted, and cost nothing (no model call succeeded)
        assert by_member[failing["id"]] == {
            "member_id": failing["id"],
            "runs": 1,
            "tokens_in": 0,
            "tokens_out": 0,
            "cost_units": 0,
        }
        total = body["total"]
        assert total["runs"] == 4
        assert total["tokens_in"] == sum(r["tokens_in"] for r in runs)
        assert total["cost_units"] == pytest.approx(sum(r["cost_units"] for r in runs))
        # offline usage at 1 unit per 1k tokens (the default COST_UNITS_PER_1K_TOKENS)
        assert total["cost_units"] == pytest.approx(
            (total["tokens_in"] + total["tokens_out"]) / 1000, abs=1e-5
        )

    def test_the_window_bounds_what_is_counted(self, client, tenant):
        h = tenant.headers()
        member = published_member(client, h, NOTES)
        run_to_end(client, h, member["id"])
        now = datetime.now(UTC)
        future = iso(now + timedelta(hours=1))
        past = iso(now - timedelta(hours=1))
        assert cost(client, h, f"from={future}")["total"]["runs"] == 0
        assert cost(client, h, f"to={past}")["total"]["runs"] == 0
        assert cost(client, h, f"from={past}")["total"]["runs"] == 1
        assert cost(client, h, f"to={future}")["total"]["runs"] == 1
        assert cost(client, h, f"from={future}&to={past}")["members"] == []
        only_to = cost(client, h, f"to={past}")
        assert datetime.fromisoformat(only_to["to"]) - datetime.fromisoformat(
            only_to["from"]
        ) == timedelta(days=30)

    def test_other_workspaces_runs_are_not_counted(self, client, make_tenant):
        a, b = make_tenant(), make_tenant()
        member = published_member(client, a.headers(), NOTES)
        run_to_end(client, a.headers(), member["id"])
        assert cost(client, b.headers())["members"] == []
        [counted] = cost(client, a.headers())["members"]
        assert (counted["member_id"], counted["runs"]) == (member["id"], 1)

    @pytest.mark.parametrize(
        "query", ["from=yesterday", "to=2026-01-01", "from=2026-01-01T00:00:00"]
    )
    def test_a_malformed_window_is_a_validation_error(self, client, tenant, query):
        check_problem(
            client.get(f"/v1/cost?{query}", headers=tenant.headers()), 400, "ValidationError"
        )

    def test_cost_needs_a_credential(self, client):
        check_problem(client.get("/v1/cost"), 401, "Unauthorized")


class TestCostGroups:
    def test_group_by_member_crew_origin_and_day_adds_up_to_the_total(self, client, tenant):
        h = tenant.headers()
        a = published_member(client, h, NOTES)
        b = published_member(client, h, NOTES)
        runs = [run_to_end(client, h, a["id"]), run_to_end(client, h, a["id"])]
        runs.append(run_to_end(client, h, b["id"]))
        body = cost(client, h, "group_by=crew,origin,day,crew")
        assert "groups" in body
        keys = [g["key"] for g in body["groups"]]
        today = datetime.now(UTC).date().isoformat()
        assert {k["crew_id"] for k in keys} == {a["crew_id"], b["crew_id"]}
        assert all(set(k) == {"crew_id", "origin", "day"} for k in keys)
        assert {(k["origin"], k["day"]) for k in keys} <= {("manual", today)} | {
            ("manual", (datetime.now(UTC) - timedelta(days=1)).date().isoformat())
        }
        assert sum(g["runs"] for g in body["groups"]) == body["total"]["runs"] == 3
        assert sum(g["cost_units"] for g in body["groups"]) == pytest.approx(
            sum(r["cost_units"] for r in runs)
        )
        by_member = {g["key"]["member_id"]: g for g in cost(client, h, "group_by=member")["groups"]}
        assert by_member[a["id"]]["runs"] == 2 and by_member[b["id"]]["runs"] == 1
        assert "groups" not in cost(client, h)

    @pytest.mark.parametrize("group_by", ["week", "member,", "member;crew"])
    def test_an_unknown_dimension_is_a_validation_error(self, client, tenant, group_by):
        r = client.get(f"/v1/cost?group_by={group_by}", headers=tenant.headers())
        check_problem(r, 400, "ValidationError")
