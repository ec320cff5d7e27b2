"""Conversational authoring through the API: from a sentence to a published member and a run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from domain.kernel import Role
from tests.api.helpers import DEFINITION, create_crew, create_member, errors_of, missing_id, publish
from tests.support.openapi_check import check_problem
from tests.support.peers import DERIVED, Peer, derive_route
from tests.support.runs import app_client, run_to_end, start, wait_for

SESSIONS = "/v1/authoring/sessions"


def open_session(
    client: httpx.Client, headers: dict[str, str], crew_id: str, member_id: str | None = None
) -> dict[str, Any]:
    body = {"crew_id": crew_id} | ({"member_id": member_id} if member_id else {})
    r = client.post(SESSIONS, json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{SESSIONS}/{r.json()['id']}"
    return dict(r.json())


def turn(client: httpx.Client, headers: dict[str, str], session_id: str, message: str) -> Any:
    r = client.post(f"{SESSIONS}/{session_id}/turn", json={"message": message}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def member_draft(client: httpx.Client, headers: dict[str, str], member_id: str) -> Any:
    r = client.get(f"/v1/members/{member_id}/draft", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["definition"]


class TestFromASentenceToASuccessfulRun:
    def test_session_turn_dry_run_publish_run(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        session = open_session(client, h, crew["id"])
        assert session["member_id"] is None and session["draft"] is None
        assert session["messages"] == [] and session["approval_preview"] == []

        result = turn(client, h, session["id"], "Keep track of customer questions and take notes.")
        member_id = result["session"]["member_id"]
        assert member_id and member_id.startswith("mem_")
        assert result["draft"]["objective"] == "Keep track of customer questions and take notes."
        assert [t["name"] for t in result["draft"]["tools"]] == ["notes_write"]
        assert result["approval_preview"][0]["pauses_for_approval"] is False
        assert member_draft(client, h, member_id) == result["draft"]

        member = client.get(f"/v1/members/{member_id}", headers=h).json()
        assert member["crew_id"] == crew["id"] and member["active_version_id"] is None

        dry = run_to_end(client, h, member_id, {}, dry_run=True)
        assert (dry["status"], dry["dry_run"]) == ("succeeded", True), dry["error"]

        publish(client, h, member_id)
        run = run_to_end(client, h, member_id, {})
        assert run["status"] == "succeeded", run["error"]
        assert run["output"]["tool_calls"] == 1

    def test_a_draft_with_an_external_write_pauses_for_approval_when_run(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        session = open_session(client, h, create_crew(client, h)["id"])
        result = turn(client, h, session["id"], "Post a summary of the day to our webhook.")
        [preview] = result["approval_preview"]
        assert preview["tool"] == "http_post" and preview["pauses_for_approval"] is True
        member_id = result["session"]["member_id"]
        publish(client, h, member_id)
        run = start(client, h, member_id, {})
        paused = wait_for(client, h, run["id"], ("waiting_approval",))
        assert paused["status"] == "waiting_approval"


class TestEveryTurnRederivesTheWholeDraft:
    def test_a_later_message_changes_rigidity_tools_and_approval(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        session = open_session(client, h, create_crew(client, h)["id"])
        first = turn(client, h, session["id"], "Post a daily summary to our webhook. Be strict.")
        assert first["draft"]["rigidity"] == "strict"
        assert [t["name"] for t in first["draft"]["tools"]] == ["http_post"]
        [preview] = first["approval_preview"]
        assert preview == {
            "tool": "http_post",
            "effect_class": "external_write",
            "pauses_for_approval": True,
            "explanation": preview["explanation"],
        }
        assert "wait" in preview["explanation"] and "approve" in preview["explanation"]
        assert preview["explanation"] in first["reply"]

        second = turn(
            client,
            h,
            session["id"],
            "Also fetch the status page website first. Be flexible; post without approval. "
            "Never post twice a day.",
        )
        draft = second["draft"]
        assert draft["rigidity"] == "adaptive"
        assert draft["objective"] == first["draft"]["objective"]  # derived again, same start
        assert draft["rules"] == ["Never post twice a day."]
        assert [(t["name"], t["whitelisted"]) for t in draft["tools"]] == [
            ("http_get", True),
            ("http_post", True),
        ]
        assert [p["pauses_for_approval"] for p in second["approval_preview"]] == [False, False]
        assert "without approval" in second["approval_preview"][1]["explanation"]
        member_id = second["session"]["member_id"]
        assert member_id == first["session"]["member_id"]  # the same member, one draft
        assert member_draft(client, h, member_id) == draft
        versions = client.get(f"/v1/members/{member_id}/versions", headers=h).json()["items"]
        assert len(versions) == 1

        third = turn(client, h, session["id"], "Actually, ask me first before posting.")
        assert [p["pauses_for_approval"] for p in third["approval_preview"]] == [False, True]

    def test_get_shows_the_conversation_and_the_draft(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        session = open_session(client, h, create_crew(client, h)["id"])
        one = turn(client, h, session["id"], "Summarise the day.")
        two = turn(client, h, session["id"], "Take notes of what you find.")
        r = client.get(f"{SESSIONS}/{session['id']}", headers=tenant.headers(Role.VIEWER))
        assert r.status_code == 200, r.text
        read = r.json()
        assert read == two["session"]
        assert [(m["role"], m["content"]) for m in read["messages"]] == [
            ("user", "Summarise the day."),
            ("assistant", one["reply"]),
            ("user", "Take notes of what you find."),
            ("assistant", two["reply"]),
        ]
        # The session's draft omits an absent input schema; the turn's definition says null.
        assert read["draft"] == {k: v for k, v in two["draft"].items() if v is not None}
        assert read["approval_preview"] == two["approval_preview"]
        assert read["created_at"] == session["created_at"] <= read["updated_at"]

    def test_two_sessions_deriving_the_same_name_make_two_members(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew_id = create_crew(client, h)["id"]
        ids = set()
        for _ in range(2):
            session = open_session(client, h, crew_id)
            ids.add(turn(client, h, session["id"], "Summarise the day.")["session"]["member_id"])
        names = [client.get(f"/v1/members/{i}", headers=h).json()["name"] for i in ids]
        assert len(ids) == 2 and len(set(names)) == 2


class TestASessionForAnExistingMember:
    def test_the_members_draft_seeds_and_is_refined_on_every_turn(self, client, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(client, h)
        member = create_member(client, h, crew["id"])
        publish(client, h, member["id"])
        session = open_session(client, h, crew["id"], member["id"])
        assert session["member_id"] == member["id"]
        assert session["draft"]["objective"] == DEFINITION["objective"]
        assert [p["tool"] for p in session["approval_preview"]] == ["read_queue", "send_email"]

        first = turn(client, h, session["id"], "Be strict about it.")
        second = turn(client, h, session["id"], "Never mention prices.")
        for result in (first, second):
            draft = result["draft"]
            assert draft["objective"] == DEFINITION["objective"]
            assert [t["name"] for t in draft["tools"]] == ["read_queue", "send_email"]
            assert draft["rigidity"] == "strict"
        assert second["draft"]["rules"] == [*DEFINITION["rules"], "Never mention prices."]
        # Under strict, reads pause too.
        assert [p["pauses_for_approval"] for p in second["approval_preview"]] == [True, True]
        assert member_draft(client, h, member["id"]) == second["draft"]
        r = client.get(f"/v1/members/{member['id']}", headers=h).json()
        assert r["draft_version_number"] == 2 and r["active_version_number"] == 1
        members = client.get(f"/v1/members?crew_id={crew['id']}", headers=h).json()["items"]
        assert len(members) == 1  # no new member was created


class TestBadInput:
    @pytest.fixture
    def session(self, client, tenant) -> dict[str, Any]:
        h = tenant.headers(Role.AUTHOR)
        return open_session(client, h, create_crew(client, h)["id"])

    def test_an_empty_message_is_a_validation_error(self, client, tenant, session):
        r = client.post(
            f"{SESSIONS}/{session['id']}/turn", json={"message": ""}, headers=tenant.headers()
        )
        body = check_problem(r, 400, "ValidationError")
        assert errors_of(body)[0]["pointer"] == "/message"

    def test_a_missing_message_is_a_validation_error(self, client, tenant, session):
        r = client.post(f"{SESSIONS}/{session['id']}/turn", json={}, headers=tenant.headers())
        check_problem(r, 400, "ValidationError")

    def test_a_message_over_the_max_length_is_a_validation_error(self, client, tenant, session):
        r = client.post(
            f"{SESSIONS}/{session['id']}/turn",
            json={"message": "x" * 4001},
            headers=tenant.headers(),
        )
        body = check_problem(r, 400, "ValidationError")
        assert (errors_of(body)[0]["pointer"], errors_of(body)[0]["reason"]) == (
            "/message",
            "maxLength",
        )

    def test_a_message_of_exactly_the_max_length_is_accepted(self, client, tenant, session):
        turn(client, tenant.headers(), session["id"], "word " * 799 + "done")

    def test_a_body_over_the_size_limit_is_payload_too_large(
        self, client, tenant, session, settings
    ):
        r = client.post(
            f"{SESSIONS}/{session['id']}/turn",
            json={"message": "x" * (settings.max_body_bytes + 1)},
            headers=tenant.headers(),
        )
        check_problem(r, 413, "PayloadTooLarge")
        after = client.get(f"{SESSIONS}/{session['id']}", headers=tenant.headers()).json()
        assert after["messages"] == [] and after["member_id"] is None

    def test_a_nul_character_is_a_validation_error(self, client, tenant, session):
        r = client.post(
            f"{SESSIONS}/{session['id']}/turn",
            json={"message": "a\u0000b"},
            headers=tenant.headers(),
        )
        check_problem(r, 400, "ValidationError")

    def test_a_session_of_another_workspace_is_not_found(self, client, make_tenant, session):
        other = make_tenant()
        for r in (
            client.get(f"{SESSIONS}/{session['id']}", headers=other.headers()),
            client.post(
                f"{SESSIONS}/{session['id']}/turn", json={"message": "hi"}, headers=other.headers()
            ),
        ):
            check_problem(r, 404, "NotFound")

    def test_an_unknown_session_is_not_found(self, client, tenant):
        r = client.get(f"{SESSIONS}/{missing_id('ses')}", headers=tenant.headers())
        check_problem(r, 404, "NotFound")

    def test_a_malformed_session_id_is_a_validation_error(self, client, tenant):
        r = client.get(f"{SESSIONS}/not-a-session", headers=tenant.headers())
        check_problem(r, 400, "ValidationError")

    def test_an_unknown_crew_is_not_found_with_its_pointer(self, client, tenant):
        r = client.post(SESSIONS, json={"crew_id": missing_id("crw")}, headers=tenant.headers())
        body = check_problem(r, 404, "NotFound")
        assert body["error"]["details"]["pointer"] == "/crew_id"

    def test_an_unknown_member_is_not_found_with_its_pointer(self, client, tenant):
        h = tenant.headers()
        crew = create_crew(client, h)
        r = client.post(
            SESSIONS, json={"crew_id": crew["id"], "member_id": missing_id("mem")}, headers=h
        )
        body = check_problem(r, 404, "NotFound")
        assert body["error"]["details"]["pointer"] == "/member_id"

    def test_another_workspaces_crew_is_not_found(self, client, make_tenant):
        a, b = make_tenant(), make_tenant()
        crew = create_crew(client, a.headers())
        r = client.post(SESSIONS, json={"crew_id": crew["id"]}, headers=b.headers())
        body = check_problem(r, 404, "NotFound")
        assert body["error"]["details"]["pointer"] == "/crew_id"

    def test_a_viewer_cannot_open_or_turn_but_can_read(self, client, tenant, session):
        viewer = tenant.headers(Role.VIEWER)
        r = client.post(SESSIONS, json={"crew_id": session["crew_id"]}, headers=viewer)
        check_problem(r, 403, "Forbidden")
        r = client.post(f"{SESSIONS}/{session['id']}/turn", json={"message": "hi"}, headers=viewer)
        check_problem(r, 403, "Forbidden")
        assert client.get(f"{SESSIONS}/{session['id']}", headers=viewer).status_code == 200
        r = client.post(
            f"{SESSIONS}/{session['id']}/turn",
            json={"message": "hi"},
            headers=tenant.headers(Role.OPERATOR),
        )
        check_problem(r, 403, "Forbidden")

    def test_no_credential_is_unauthorized(self, client, session):
        r = client.get(f"{SESSIONS}/{session['id']}")
        check_problem(r, 401, "Unauthorized")


# -- the deriver backed by a chat-completions model (a real local HTTP server) -----------------


@pytest.fixture(scope="module")
def deriving_model() -> Iterator[Peer]:
    peer = Peer(derive_route).start()
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def api(settings: Any, deriving_model: Peer) -> Iterator[httpx.Client]:
    with app_client(
        settings,
        model="openai",
        model_base_url=deriving_model.url("/v1/"),
        model_api_key=SecretStr("sk-test-key"),
        model_name="deriver-model",
        model_timeout_seconds=1.0,
    ) as c:
        yield c


class TestTheModelDeriver:
    def test_a_valid_answer_is_the_draft(self, api, tenant):
        h = tenant.headers(Role.AUTHOR)
        session = open_session(api, h, create_crew(api, h)["id"])
        result = turn(api, h, session["id"], "Post ticket summaries. derive:valid")
        expected = DERIVED["definition"]
        assert result["draft"]["objective"] == expected["objective"]
        assert result["draft"]["rigidity"] == "strict"
        assert [t["name"] for t in result["draft"]["tools"]] == ["http_post", "notes_write"]
        assert result["reply"].startswith(DERIVED["reply"])
        assert [p["pauses_for_approval"] for p in result["approval_preview"]] == [True, False]
        member = api.get(f"/v1/members/{result['session']['member_id']}", headers=h).json()
        assert member["name"] == DERIVED["name"]

    def test_invalid_json_then_valid_succeeds_after_one_retry(self, api, tenant, deriving_model):
        h = tenant.headers(Role.AUTHOR)
        session = open_session(api, h, create_crew(api, h)["id"])
        marker = f"marker-{tenant.workspace_id}"
        result = turn(api, h, session["id"], f"{marker} derive:retry")
        assert result["draft"]["objective"] == DERIVED["definition"]["objective"]
        asked = [r for r in deriving_model.received("POST") if marker in r.body.decode()]
        assert len(asked) == 2

    @pytest.mark.parametrize("scenario", ["garbage", "schema", "effect", "nul", "error", "slow"])
    def test_a_misbehaving_model_is_bad_gateway_and_changes_nothing(self, api, tenant, scenario):
        h = tenant.headers(Role.AUTHOR)
        session = open_session(api, h, create_crew(api, h)["id"])
        good = turn(api, h, session["id"], "Post ticket summaries. derive:valid")
        member_id = good["session"]["member_id"]
        before = (
            api.get(f"{SESSIONS}/{session['id']}", headers=h).json(),
            api.get(f"/v1/members/{member_id}/draft", headers=h).json(),
        )
        r = api.post(
            f"{SESSIONS}/{session['id']}/turn",
            json={"message": f"Now change everything. derive:{scenario}"},
            headers=h,
        )
        body = check_problem(r, 502, "BadGateway")
        assert body["type"].endswith("/problems/model-unusable")
        after = (
            api.get(f"{SESSIONS}/{session['id']}", headers=h).json(),
            api.get(f"/v1/members/{member_id}/draft", headers=h).json(),
        )
        assert after == before

    def test_a_failing_first_turn_creates_no_member(self, api, tenant):
        h = tenant.headers(Role.AUTHOR)
        crew = create_crew(api, h)
        session = open_session(api, h, crew["id"])
        r = api.post(
            f"{SESSIONS}/{session['id']}/turn", json={"message": "derive:garbage"}, headers=h
        )
        check_problem(r, 502, "BadGateway")
        assert api.get(f"/v1/members?crew_id={crew['id']}", headers=h).json()["items"] == []
        read = api.get(f"{SESSIONS}/{session['id']}", headers=h).json()
        assert read["messages"] == [] and read["member_id"] is None and read["draft"] is None
