"""Handoffs at run time: a succeeded run starts the first matching handoff's target as a child.

The module's app runs with ``HANDOFF_MAX_DEPTH=2`` so a short chain reaches the cap.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from domain.kernel import Role
from tests.api.helpers import create_crew, create_member
from tests.support.runs import (
    NOTES,
    POSTER,
    app_client,
    definition,
    events,
    published_member,
    run_to_end,
    start,
    wait_for,
)

MAX_DEPTH = 2


@pytest.fixture(scope="module")
def api(settings: Any) -> Iterator[httpx.Client]:
    with app_client(settings, handoff_max_depth=MAX_DEPTH) as c:
        yield c


def declare(api: httpx.Client, headers: dict[str, str], member_id: str, *handoffs: Any) -> None:
    items = []
    for handoff in handoffs:
        target, condition = handoff if isinstance(handoff, tuple) else (handoff, None)
        item: dict[str, Any] = {"target_member_id": target}
        if condition is not None:
            item["condition"] = {"output_field": condition[0], "equals": condition[1]}
        items.append(item)
    r = api.put(f"/v1/members/{member_id}/handoffs", json={"handoffs": items}, headers=headers)
    assert r.status_code == 200, r.text


def children(api: httpx.Client, headers: dict[str, str], run_id: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/runs?parent_run_id={run_id}", headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def handoff_events(api: httpx.Client, headers: dict[str, str], run_id: str) -> list[Any]:
    return [e for e in events(api, headers, run_id) if e["type"].startswith("handoff.")]


class TestHandoffOnSuccess:
    def test_a_succeeded_run_starts_its_handoff_target_as_a_child_run(self, api, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(api, h)
        parent_member = published_member(api, h, NOTES, crew["id"])
        child_member = published_member(api, h, definition(), crew["id"])
        declare(api, h, parent_member["id"], child_member["id"])

        parent = run_to_end(api, h, parent_member["id"], {"output": {"ticket": "T-1"}})
        assert parent["status"] == "succeeded", parent["error"]
        found = children(api, h, parent["id"])
        assert len(found) == 1
        child = wait_for(api, h, found[0]["id"])
        assert child["status"] == "succeeded", child["error"]
        assert child["origin"] == "handoff"
        assert child["parent_run_id"] == parent["id"]
        assert child["depth"] == 1
        assert child["member_id"] == child_member["id"]
        assert child["version_number"] == 1
        assert child["input"] == parent["output"]  # the parent's output is the child's input
        assert child["created_by"] == f"run:{parent['id']}"
        assert handoff_events(api, h, parent["id"]) == [
            {
                **handoff_events(api, h, parent["id"])[0],
                "data": {"target_member_id": child_member["id"], "child_run_id": child["id"]},
            }
        ]
        assert events(api, h, child["id"])[0]["data"] == {
            "origin": "handoff",
            "parent_run_id": parent["id"],
        }
        listed = api.get("/v1/runs?origin=handoff", headers=h).json()["items"]
        assert [r["id"] for r in listed] == [child["id"]]

    def test_the_first_matching_condition_on_the_output_chooses_the_target(self, api, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(api, h)
        triage = published_member(api, h, definition(), crew["id"])
        urgent = published_member(api, h, definition(), crew["id"])
        billing = published_member(api, h, definition(), crew["id"])
        fallback = published_member(api, h, definition(), crew["id"])
        declare(
            api,
            h,
            triage["id"],
            (urgent["id"], ("category", "urgent")),
            (billing["id"], ("category", "billing")),
            fallback["id"],
        )
        for category, target in (("urgent", urgent), ("billing", billing), ("other", fallback)):
            parent = run_to_end(api, h, triage["id"], {"output": {"category": category}})
            assert parent["status"] == "succeeded"
            [child] = children(api, h, parent["id"])
            assert child["member_id"] == target["id"], category
            assert child["input"]["category"] == category
            wait_for(api, h, child["id"])

    def test_without_a_matching_condition_nothing_is_started(self, api, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(api, h)
        source = published_member(api, h, definition(), crew["id"])
        target = published_member(api, h, definition(), crew["id"])
        declare(api, h, source["id"], (target["id"], ("category", "urgent")))
        parent = run_to_end(api, h, source["id"], {"output": {"category": "routine"}})
        assert parent["status"] == "succeeded"
        assert children(api, h, parent["id"]) == []
        assert handoff_events(api, h, parent["id"]) == []
        # a boolean condition never matches the number 1 (and the other way round)
        declare(api, h, source["id"], (target["id"], ("urgent", True)))
        parent = run_to_end(api, h, source["id"], {"output": {"urgent": 1}})
        assert children(api, h, parent["id"]) == []

    def test_the_depth_cap_stops_a_chain(self, api, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(api, h)
        chain = [published_member(api, h, definition(), crew["id"]) for _ in range(MAX_DEPTH + 2)]
        for source, target in zip(chain, chain[1:], strict=False):
            declare(api, h, source["id"], target["id"])

        run = run_to_end(api, h, chain[0]["id"])
        lineage = [run]
        while found := children(api, h, lineage[-1]["id"]):
            lineage.append(wait_for(api, h, found[0]["id"]))
        assert [r["depth"] for r in lineage] == list(range(MAX_DEPTH + 1))
        assert [r["member_id"] for r in lineage] == [m["id"] for m in chain[: MAX_DEPTH + 1]]
        assert all(r["status"] == "succeeded" for r in lineage)
        last = handoff_events(api, h, lineage[-1]["id"])
        assert [(e["type"], e["data"]) for e in last] == [
            (
                "handoff.skipped",
                {"target_member_id": chain[MAX_DEPTH + 1]["id"], "reason": "depth_cap"},
            )
        ]

    def test_an_unpublished_target_is_skipped(self, api, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(api, h)
        source = published_member(api, h, definition(), crew["id"])
        draft_only = create_member(api, h, crew["id"], definition=definition())
        declare(api, h, source["id"], draft_only["id"])
        parent = run_to_end(api, h, source["id"])
        assert parent["status"] == "succeeded"
        assert children(api, h, parent["id"]) == []
        assert [(e["type"], e["data"]) for e in handoff_events(api, h, parent["id"])] == [
            ("handoff.skipped", {"target_member_id": draft_only["id"], "reason": "not_published"})
        ]

    def test_a_failed_run_hands_off_nothing(self, api, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(api, h)
        source = published_member(api, h, definition(), crew["id"])
        target = published_member(api, h, definition(), crew["id"])
        declare(api, h, source["id"], target["id"])
        parent = run_to_end(api, h, source["id"], {"simulate": "model_error"})
        assert parent["status"] == "failed"
        assert children(api, h, parent["id"]) == []

    def test_a_dry_run_hands_off_nothing(self, api, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(api, h)
        source = published_member(api, h, definition(), crew["id"])
        target = published_member(api, h, definition(), crew["id"])
        declare(api, h, source["id"], target["id"])
        assert (
            api.put(f"/v1/members/{source['id']}/draft", json=definition(), headers=h).status_code
            == 200
        )
        parent = run_to_end(api, h, source["id"], dry_run=True)
        assert parent["status"] == "succeeded"
        assert children(api, h, parent["id"]) == []

    def test_a_child_that_needs_approval_waits_like_any_run(self, api, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(api, h)
        source = published_member(api, h, definition(), crew["id"])
        gated = published_member(api, h, POSTER, crew["id"])
        declare(api, h, source["id"], gated["id"])
        parent = run_to_end(api, h, source["id"], {"output": {"url": "https://x.invalid"}})
        [child] = children(api, h, parent["id"])
        child = wait_for(api, h, child["id"], ("waiting_approval",))
        assert child["origin"] == "handoff"

    def test_the_childs_input_schema_applies_to_the_handed_off_output(self, api, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(api, h)
        source = published_member(api, h, definition(), crew["id"])
        strict_input = {"type": "object", "required": ["ticket"]}
        target = published_member(api, h, definition(input_schema=strict_input), crew["id"])
        declare(api, h, source["id"], target["id"])
        parent = run_to_end(api, h, source["id"], {"output": {"category": "no ticket"}})
        assert parent["status"] == "succeeded"
        assert children(api, h, parent["id"]) == []
        [skipped] = handoff_events(api, h, parent["id"])
        assert skipped["type"] == "handoff.skipped"
        assert skipped["data"]["reason"] == "input_schema_mismatch"

        parent = run_to_end(api, h, source["id"], {"output": {"ticket": "T-9"}})
        [child] = children(api, h, parent["id"])
        assert wait_for(api, h, child["id"])["status"] == "succeeded"


def test_a_run_started_by_hand_of_a_handoff_target_is_manual(api, tenant):
    h = tenant.headers(Role.OPERATOR)
    member = published_member(api, tenant.headers(Role.AUTHOR), definition())
    run = start(api, h, member["id"])
    assert (run["origin"], run["depth"], run["parent_run_id"]) == ("manual", 0, None)
    wait_for(api, h, run["id"])
