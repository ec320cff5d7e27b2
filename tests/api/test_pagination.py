"""Lists: a limit/next_cursor walk returns every item exactly once; filters narrow the list."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from domain.kernel import Role
from tests.api.helpers import DEFINITION, create_crew, create_member, publish


def walk(client: Any, url: str, headers: dict[str, str], limit: int) -> list[list[str]]:
    """Follow next_cursor to the end; return the ids of each page."""
    pages: list[list[str]] = []
    cursor: str | None = None
    separator = "&" if "?" in url else "?"
    while True:
        query = f"{separator}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        r = client.get(url + query, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append([item.get("id") or item.get("workspace_id") for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "the walk does not end"


class TestCursorWalk:
    @pytest.mark.parametrize("limit", [1, 3, 7, 200])
    def test_walking_crews_returns_every_crew_once_in_creation_order(self, client, tenant, limit):
        h = tenant.headers(Role.AUTHOR)
        made = [create_crew(client, h)["id"] for _ in range(7)]
        pages = walk(client, "/v1/crews", tenant.headers(Role.VIEWER), limit)
        assert [i for page in pages for i in page] == made
        assert all(len(page) <= limit for page in pages)
        assert len(pages) == max(1, -(-7 // limit))

    def test_walking_members_returns_every_member_once(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        made = [create_member(client, h, crew["id"])["id"] for _ in range(5)]
        pages = walk(client, "/v1/members", h, 2)
        assert [len(p) for p in pages] == [2, 2, 1]
        assert [i for page in pages for i in page] == made

    def test_walking_a_crews_members_returns_each_once(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        made = [create_member(client, h, crew["id"])["id"] for _ in range(4)]
        pages = walk(client, f"/v1/crews/{crew['id']}/members", h, 2)
        assert [i for page in pages for i in page] == made

    def test_walking_versions_returns_every_version_once_by_number(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        member = create_member(client, h, create_crew(client, h)["id"])
        for _ in range(3):
            publish(client, h, member["id"])
            client.put(f"/v1/members/{member['id']}/draft", json=DEFINITION, headers=h)
        url = f"/v1/members/{member['id']}/versions"
        ids = [i for page in walk(client, url, h, 2) for i in page]
        everything = client.get(url, headers=h).json()["items"]
        assert ids == [v["id"] for v in everything]
        assert [v["number"] for v in everything] == [1, 2, 3, 4]

    def test_walking_my_workspaces_returns_each_once(self, client, make_tenant, use_cases):
        subject = f"walker-{secrets.token_hex(6)}"
        tenants = [make_tenant() for _ in range(5)]
        for t in tenants:
            use_cases.workspaces.ensure_member(t.workspace_id, subject, Role.VIEWER)
        pages = walk(client, "/v1/me/workspaces", tenants[0].headers(Role.VIEWER, subject), 2)
        listed = [i for page in pages for i in page]
        assert sorted(listed) == sorted(t.workspace_id for t in tenants)
        assert len(listed) == len(set(listed))

    def test_an_item_created_during_a_walk_appears_once_at_the_end(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        made = [create_crew(client, h)["id"] for _ in range(3)]
        first = client.get("/v1/crews?limit=2", headers=h).json()
        made.append(create_crew(client, h)["id"])
        rest = client.get(f"/v1/crews?limit=10&cursor={first['next_cursor']}", headers=h).json()
        assert [c["id"] for c in first["items"] + rest["items"]] == made

    def test_the_default_page_size_is_fifty(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        for _ in range(51):
            client.post(
                "/v1/members",
                json={
                    "crew_id": crew["id"],
                    "name": secrets.token_hex(6),
                    "definition": DEFINITION,
                },
                headers=h,
            )
        body = client.get("/v1/members", headers=h).json()
        assert len(body["items"]) == 50
        assert body["next_cursor"] is not None


class TestFilters:
    @pytest.fixture
    def catalogue(self, client: Any, tenant: Any) -> dict[str, Any]:
        h = tenant.headers(Role.AUTHOR)
        support, billing = create_crew(client, h, "Support desk"), create_crew(client, h, "Billing")
        digest = create_member(client, h, support["id"], "Ticket Digest")
        triage = create_member(client, h, support["id"], "Ticket triage")
        invoices = create_member(client, h, billing["id"], "Invoice chaser")
        publish(client, h, digest["id"])
        publish(client, h, invoices["id"])
        return {
            "crews": {"support": support["id"], "billing": billing["id"]},
            "members": {"digest": digest["id"], "triage": triage["id"], "invoices": invoices["id"]},
        }

    def _ids(self, client: Any, tenant: Any, url: str) -> set[str]:
        r = client.get(url, headers=tenant.headers(Role.VIEWER))
        assert r.status_code == 200, r.text
        return {item["id"] for item in r.json()["items"]}

    def test_members_filtered_by_crew(self, client, tenant, catalogue):
        m, c = catalogue["members"], catalogue["crews"]
        assert self._ids(client, tenant, f"/v1/members?crew_id={c['support']}") == {
            m["digest"],
            m["triage"],
        }

    def test_members_filtered_by_status(self, client, tenant, catalogue):
        m = catalogue["members"]
        assert self._ids(client, tenant, "/v1/members?status=published") == {
            m["digest"],
            m["invoices"],
        }
        assert self._ids(client, tenant, "/v1/members?status=draft") == {m["triage"]}

    def test_members_filtered_by_a_case_insensitive_name_substring(self, client, tenant, catalogue):
        m = catalogue["members"]
        assert self._ids(client, tenant, "/v1/members?q=TICKET") == {m["digest"], m["triage"]}
        assert self._ids(client, tenant, "/v1/members?q=chase") == {m["invoices"]}

    def test_filters_combine(self, client, tenant, catalogue):
        m, c = catalogue["members"], catalogue["crews"]
        url = f"/v1/members?crew_id={c['support']}&status=published&q=digest"
        assert self._ids(client, tenant, url) == {m["digest"]}
        assert self._ids(client, tenant, f"/v1/members?crew_id={c['billing']}&q=ticket") == set()

    def test_crews_filtered_by_a_case_insensitive_name_substring(self, client, tenant, catalogue):
        assert self._ids(client, tenant, "/v1/crews?q=DESK") == {catalogue["crews"]["support"]}

    @pytest.mark.parametrize("wildcard", ["%25", "_"])
    def test_sql_wildcards_in_q_match_literally(self, client, tenant, catalogue, wildcard):
        assert self._ids(client, tenant, f"/v1/members?q={wildcard}") == set()
        assert self._ids(client, tenant, f"/v1/crews?q={wildcard}") == set()

    def test_a_filter_pages_through_only_matching_items(self, client, tenant, catalogue):
        m = catalogue["members"]
        pages = walk(client, "/v1/members?q=ticket", tenant.headers(), 1)
        assert [i for page in pages for i in page] == [m["digest"], m["triage"]]
