"""Version diff and one-call restore (issue 14)."""

from __future__ import annotations

from domain.kernel import Role
from tests.api.helpers import DEFINITION, create_crew, create_member, publish
from tests.support.openapi_check import check_problem


def _two_versions(client, h):
    member = create_member(client, h, create_crew(client, h)["id"])
    publish(client, h, member["id"])
    second = {
        **DEFINITION,
        "instructions": "Group by product and priority.",
        "rigidity": "strict",
        "rules": ["Keep it under 200 words."],
        "tools": [
            {"name": "read_queue", "effect_class": "external_read"},
            {"name": "http_post", "effect_class": "external_write"},
        ],
    }
    assert (
        client.put(f"/v1/members/{member['id']}/draft", json=second, headers=h).status_code == 200
    )
    publish(client, h, member["id"])
    return member


class TestDiff:
    def test_two_versions_are_compared_field_by_field(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = _two_versions(client, h)
        r = client.get(
            f"/v1/members/{member['id']}/versions/2/diff",
            params={"against": 1},
            headers=tenant.headers(Role.VIEWER),
        )
        assert r.status_code == 200, r.text
        diff = r.json()
        assert (diff["number"], diff["against"], diff["identical"]) == (2, 1, False)
        assert diff["objective"] is None
        assert diff["rigidity"] == {"before": "guided", "after": "strict"}
        assert diff["rules"] == {
            "added": ["Keep it under 200 words."],
            "removed": ["Never email customers directly."],
        }
        assert [t["name"] for t in diff["tools"]["added"]] == ["http_post"]
        assert [t["name"] for t in diff["tools"]["removed"]] == ["send_email"]
        assert diff["approvals"] == {
            "added": ["read_queue", "http_post"],
            "removed": ["send_email"],
        }

    def test_a_version_against_itself_is_identical(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = _two_versions(client, h)
        r = client.get(f"/v1/members/{member['id']}/versions/1/diff?against=1", headers=h)
        assert r.json()["identical"] is True

    def test_a_missing_version_on_either_side_is_not_found(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = _two_versions(client, h)
        for path in ("versions/2/diff?against=9", "versions/9/diff?against=1"):
            check_problem(
                client.get(f"/v1/members/{member['id']}/{path}", headers=h), 404, "NotFound"
            )

    def test_against_is_required(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = _two_versions(client, h)
        r = client.get(f"/v1/members/{member['id']}/versions/2/diff", headers=h)
        check_problem(r, 400, "ValidationError")


class TestRestore:
    def test_one_call_makes_a_new_draft_equal_to_the_version(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = _two_versions(client, h)
        r = client.post(f"/v1/members/{member['id']}/versions/1/restore", headers=h)
        assert r.status_code == 200, r.text
        draft = r.json()
        assert (draft["number"], draft["status"]) == (3, "draft")
        v1 = client.get(f"/v1/members/{member['id']}/versions/1", headers=h).json()
        assert draft["definition"] == v1["definition"]
        assert (
            r.headers["ETag"]
            == client.get(f"/v1/members/{member['id']}/draft", headers=h).headers["ETag"]
        )
        assert publish(client, h, member["id"])["number"] == 3
        diff = client.get(f"/v1/members/{member['id']}/versions/3/diff?against=1", headers=h)
        assert diff.json()["identical"] is True

    def test_restoring_over_an_open_draft_replaces_it(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = _two_versions(client, h)
        client.put(
            f"/v1/members/{member['id']}/draft", json={**DEFINITION, "objective": "X"}, headers=h
        )
        r = client.post(f"/v1/members/{member['id']}/versions/2/restore", headers=h)
        assert r.json()["number"] == 3
        assert r.json()["definition"]["rigidity"] == "strict"

    def test_a_stale_if_match_is_412(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = _two_versions(client, h)
        r = client.post(
            f"/v1/members/{member['id']}/versions/1/restore", headers={**h, "If-Match": '"old"'}
        )
        check_problem(r, 412, "PreconditionFailed")

    def test_an_unknown_version_is_not_found(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = _two_versions(client, h)
        r = client.post(f"/v1/members/{member['id']}/versions/7/restore", headers=h)
        check_problem(r, 404, "NotFound")

    def test_a_viewer_may_not_restore(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = _two_versions(client, h)
        r = client.post(
            f"/v1/members/{member['id']}/versions/1/restore", headers=tenant.headers(Role.VIEWER)
        )
        check_problem(r, 403, "Forbidden")
