"""Handoff declarations: read, replace, and the single-branch and acyclic rules."""

from __future__ import annotations

from typing import Any

import pytest

from domain.kernel import Role
from tests.api.helpers import create_crew, create_member, errors_of, missing_id
from tests.support.openapi_check import check_problem


@pytest.fixture
def members(client: Any, tenant: Any) -> list[str]:
    """Four members of one crew in the tenant's workspace."""
    h = tenant.headers(Role.AUTHOR)
    crew = create_crew(client, h)
    return [create_member(client, h, crew["id"])["id"] for _ in range(4)]


def put(client: Any, tenant: Any, member_id: str, handoffs: list[dict[str, Any]]) -> Any:
    return client.put(
        f"/v1/members/{member_id}/handoffs",
        json={"handoffs": handoffs},
        headers=tenant.headers(Role.AUTHOR),
    )


class TestReadHandoffs:
    def test_a_member_without_handoffs_has_an_empty_list(self, client, tenant, members):
        r = client.get(f"/v1/members/{members[0]}/handoffs", headers=tenant.headers(Role.VIEWER))
        assert r.status_code == 200
        assert r.json() == {"member_id": members[0], "handoffs": [], "updated_at": None}

    def test_the_handoffs_of_an_unknown_member_are_not_found(self, client, tenant):
        r = client.get(f"/v1/members/{missing_id('mem')}/handoffs", headers=tenant.headers())
        check_problem(r, 404, "NotFound")


class TestDeclareHandoffs:
    def test_declared_handoffs_are_read_back_in_order_with_their_conditions(
        self, client, tenant, members
    ):
        a, b, c, d = members
        declared = [
            {"target_member_id": b, "condition": {"output_field": "kind", "equals": "bug"}},
            {"target_member_id": c, "condition": {"output_field": "urgent", "equals": True}},
            {"target_member_id": d, "condition": None},
        ]
        r = put(client, tenant, a, declared)
        assert r.status_code == 200, r.text
        assert r.json()["updated_at"] is not None
        read = client.get(f"/v1/members/{a}/handoffs", headers=tenant.headers(Role.VIEWER))
        assert read.json()["handoffs"] == [
            {**item, "position": position} for position, item in enumerate(declared)
        ]
        assert read.json() == r.json()

    def test_numeric_and_boolean_conditions_keep_their_types(self, client, tenant, members):
        a, b, c, _ = members
        put(
            client,
            tenant,
            a,
            [
                {"target_member_id": b, "condition": {"output_field": "n", "equals": 1}},
                {"target_member_id": c, "condition": {"output_field": "f", "equals": True}},
            ],
        )
        read = client.get(f"/v1/members/{a}/handoffs", headers=tenant.headers()).json()
        equals = [h["condition"]["equals"] for h in read["handoffs"]]
        assert equals == [1, True]
        assert type(equals[0]) is int and type(equals[1]) is bool

    def test_an_empty_list_removes_every_handoff(self, client, tenant, members):
        a, b, _, _ = members
        put(client, tenant, a, [{"target_member_id": b}])
        r = put(client, tenant, a, [])
        assert r.status_code == 200
        assert (
            client.get(f"/v1/members/{a}/handoffs", headers=tenant.headers()).json()["handoffs"]
            == []
        )

    def test_an_unconditional_handoff_may_be_given_by_omitting_the_condition(
        self, client, tenant, members
    ):
        a, b, _, _ = members
        r = put(client, tenant, a, [{"target_member_id": b}])
        assert r.json()["handoffs"] == [{"target_member_id": b, "condition": None, "position": 0}]


class TestHandoffRules:
    def test_a_handoff_to_the_member_itself_is_a_conflict(self, client, tenant, members):
        a = members[0]
        body = check_problem(put(client, tenant, a, [{"target_member_id": a}]), 409, "Conflict")
        assert body["type"] == "/problems/handoff-self"
        assert body["error"]["details"]["pointer"] == "/handoffs/0/target_member_id"

    def test_two_unconditional_handoffs_are_a_conflict(self, client, tenant, members):
        a, b, c, _ = members
        r = put(client, tenant, a, [{"target_member_id": b}, {"target_member_id": c}])
        body = check_problem(r, 409, "Conflict")
        assert body["type"] == "/problems/handoff-unconditional"
        assert body["error"]["details"]["pointer"] == "/handoffs/1/condition"

    def test_the_same_target_twice_is_a_conflict(self, client, tenant, members):
        a, b, _, _ = members
        r = put(
            client,
            tenant,
            a,
            [
                {"target_member_id": b, "condition": {"output_field": "x", "equals": 1}},
                {"target_member_id": b},
            ],
        )
        body = check_problem(r, 409, "Conflict")
        assert body["type"] == "/problems/handoff-duplicate-target"

    def test_closing_a_two_member_cycle_is_a_conflict_naming_the_cycle(
        self, client, tenant, members
    ):
        a, b, _, _ = members
        assert put(client, tenant, a, [{"target_member_id": b}]).status_code == 200
        body = check_problem(put(client, tenant, b, [{"target_member_id": a}]), 409, "Conflict")
        assert body["type"] == "/problems/handoff-cycle"
        assert body["error"]["details"]["cycle"] == [b, a, b]
        assert body["error"]["details"]["pointer"] == "/handoffs/0/target_member_id"

    def test_closing_a_longer_cycle_names_every_member_of_it(self, client, tenant, members):
        a, b, c, d = members
        put(client, tenant, a, [{"target_member_id": b}])
        put(client, tenant, b, [{"target_member_id": c}])
        put(client, tenant, c, [{"target_member_id": d}])
        r = put(
            client,
            tenant,
            d,
            [
                {"target_member_id": b, "condition": {"output_field": "x", "equals": "y"}},
            ],
        )
        body = check_problem(r, 409, "Conflict")
        assert body["error"]["details"]["cycle"] == [d, b, c, d]
        assert body["error"]["details"]["pointer"] == "/handoffs/0/target_member_id"
        unchanged = client.get(f"/v1/members/{d}/handoffs", headers=tenant.headers()).json()
        assert unchanged["handoffs"] == []

    def test_redeclaring_a_members_handoffs_does_not_count_its_old_edges_as_a_cycle(
        self, client, tenant, members
    ):
        a, b, c, _ = members
        put(client, tenant, a, [{"target_member_id": b}])
        put(client, tenant, b, [{"target_member_id": c}])
        assert put(client, tenant, a, [{"target_member_id": c}]).status_code == 200
        assert put(client, tenant, b, [{"target_member_id": a}]).status_code == 200

    def test_an_unknown_target_is_not_found_with_the_pointer_of_the_entry(
        self, client, tenant, members
    ):
        a, b, _, _ = members
        r = put(
            client,
            tenant,
            a,
            [
                {"target_member_id": b, "condition": {"output_field": "x", "equals": 1}},
                {"target_member_id": missing_id("mem")},
            ],
        )
        body = check_problem(r, 404, "NotFound")
        assert body["error"]["details"]["pointer"] == "/handoffs/1/target_member_id"

    def test_a_target_in_another_workspace_is_not_found(self, client, tenant, members, make_tenant):
        other = make_tenant()
        oh = other.headers(Role.AUTHOR)
        foreign = create_member(client, oh, create_crew(client, oh)["id"])["id"]
        body = check_problem(
            put(client, tenant, members[0], [{"target_member_id": foreign}]), 404, "NotFound"
        )
        assert body["error"]["details"]["pointer"] == "/handoffs/0/target_member_id"

    def test_a_condition_without_equals_is_a_validation_error(self, client, tenant, members):
        a, b, _, _ = members
        r = put(client, tenant, a, [{"target_member_id": b, "condition": {"output_field": "x"}}])
        body = check_problem(r, 400, "ValidationError")
        assert errors_of(body)[0]["pointer"] == "/handoffs/0/condition"

    def test_more_than_sixteen_handoffs_are_a_validation_error(self, client, tenant, members):
        a = members[0]
        many = [
            {"target_member_id": missing_id("mem"), "condition": {"output_field": "i", "equals": i}}
            for i in range(17)
        ]
        body = check_problem(put(client, tenant, a, many), 400, "ValidationError")
        assert errors_of(body)[0] == {
            **errors_of(body)[0],
            "pointer": "/handoffs",
            "reason": "maxItems",
        }
