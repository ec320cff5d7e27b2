"""The first walk through the API: health, workspace, a crew, a member, publish."""

from __future__ import annotations

from domain.kernel import Role
from tests.support.openapi_check import check_problem

DEFINITION = {
    "objective": "Summarise new support tickets every morning.",
    "instructions": "Read the queue, group by product, write a short summary.",
    "rules": ["Never email customers directly."],
    "rigidity": "guided",
    "tools": [
        {"name": "read_queue", "effect_class": "external_read"},
        {"name": "send_email", "effect_class": "external_write"},
    ],
}


class TestHealth:
    def test_answers_ok_without_credentials(self, client):
        r = client.get("/health")
        assert r.status_code == 200
        assert r.json() == {"status": "ok"}
        assert r.headers["x-request-id"]


class TestMemberLifecycle:
    def test_create_publish_and_fork(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = client.post("/v1/crews", json={"name": "Support"}, headers=h)
        assert crew.status_code == 201
        assert crew.headers["location"] == f"/v1/crews/{crew.json()['id']}"
        member = client.post(
            "/v1/members",
            json={"crew_id": crew.json()["id"], "name": "Ticket digest", "definition": DEFINITION},
            headers=h,
        )
        assert member.status_code == 201, member.text
        mid = member.json()["id"]
        assert member.json()["status"] == "draft"
        assert member.json()["draft_version_number"] == 1

        published = client.post(f"/v1/members/{mid}/publish", headers=h)
        assert published.status_code == 200, published.text
        v1 = published.json()
        assert v1["status"] == "published"
        assert v1["program"]["checkpoints"] == ["send_email"]
        assert v1["artifact_hash"].startswith("sha256:")

        again = client.post(f"/v1/members/{mid}/publish", headers=h)
        check_problem(again, 409, "Conflict")

        forked = client.put(f"/v1/members/{mid}/draft", json=DEFINITION, headers=h)
        assert forked.status_code == 200
        assert forked.json()["number"] == 2
        assert forked.json()["status"] == "draft"

        v2 = client.post(f"/v1/members/{mid}/publish", headers=h).json()
        assert v2["artifact_hash"] == v1["artifact_hash"]  # same definition, same artifact

        still = client.get(f"/v1/members/{mid}/versions/1", headers=h).json()
        assert still == v1

    def test_viewer_cannot_create(self, client, tenant):
        r = client.post("/v1/crews", json={"name": "x"}, headers=tenant.headers(Role.VIEWER))
        check_problem(r, 403, "Forbidden")
