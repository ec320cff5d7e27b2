"""Triggers CRUD: create (schedule, webhook; mail is 501), read, list, enable, disable, delete."""

from __future__ import annotations

from domain.kernel import Role
from tests.api.helpers import create_crew, create_member, errors_of, missing_id
from tests.support.triggers import create_trigger, published_member


def test_an_author_creates_a_webhook_trigger_and_sees_its_secret_only_once(client, tenant):
    author = tenant.headers(Role.AUTHOR)
    member = published_member(client, author)
    r = client.post(
        "/v1/triggers",
        json={"kind": "webhook", "member_id": member["id"], "name": "Tickets"},
        headers=author,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["ingress_url"].endswith(f"/v1/webhooks/{created['id']}")
    assert r.headers["Location"] == f"/v1/triggers/{created['id']}"
    assert (created["enabled"], created["cron"], created["input"]) == (True, None, None)

    got = client.get(f"/v1/triggers/{created['id']}", headers=tenant.headers(Role.VIEWER))
    assert got.status_code == 200
    assert "secret" not in got.json() and created["secret"] not in got.text
    listed = client.get("/v1/triggers", headers=tenant.headers(Role.VIEWER))
    assert [t["id"] for t in listed.json()["items"]] == [created["id"]]
    assert created["secret"] not in listed.text


def test_the_secret_is_stored_encrypted(client, tenant, database, app):
    author = tenant.headers(Role.AUTHOR)
    member = published_member(client, author)
    trigger = create_trigger(client, author, member["id"], "webhook")
    with database() as tx:
        stored = tx.triggers.get(None, trigger["id"])
    assert stored is not None and stored.secret_ciphertext is not None
    assert trigger["secret"] not in stored.secret_ciphertext
    box = app.context.use_cases.ports.secret_box
    assert box.open(stored.secret_ciphertext) == trigger["secret"]


def test_a_schedule_trigger_keeps_cron_timezone_and_input(client, tenant):
    author = tenant.headers(Role.AUTHOR)
    member = published_member(client, author)
    trigger = create_trigger(
        client,
        author,
        member["id"],
        "schedule",
        cron="30 8 * * mon-fri",
        timezone="Europe/Paris",
        input={"queue": "support"},
    )
    assert (trigger["cron"], trigger["timezone"]) == ("30 8 * * mon-fri", "Europe/Paris")
    assert trigger["input"] == {"queue": "support"}
    assert trigger["secret"] is None and trigger["ingress_url"] is None
    default_zone = create_trigger(client, author, member["id"], "schedule", cron="@hourly")
    assert default_zone["timezone"] == "UTC" and default_zone["input"] == {}


def test_garbage_cron_answers_400_naming_the_field(client, tenant):
    author = tenant.headers(Role.AUTHOR)
    member = published_member(client, author)
    for cron in ("not a cron", "61 * * * *", "* * * * * *", "*/0 * * * *", "0 9 * * MONDAY", ""):
        r = client.post(
            "/v1/triggers",
            json={"kind": "schedule", "member_id": member["id"], "name": "x", "cron": cron},
            headers=author,
        )
        assert r.status_code == 400, (cron, r.text)
        assert {e["pointer"] for e in errors_of(r.json())} == {"/cron"}, (cron, r.text)


def test_an_unknown_timezone_answers_400_naming_the_field(client, tenant):
    author = tenant.headers(Role.AUTHOR)
    member = published_member(client, author)
    for zone in ("Mars/Olympus", "localtime", "../etc/passwd", "utc+2"):
        r = client.post(
            "/v1/triggers",
            json={
                "kind": "schedule",
                "member_id": member["id"],
                "name": "x",
                "cron": "0 * * * *",
                "timezone": zone,
            },
            headers=author,
        )
        assert r.status_code == 400, (zone, r.text)
        assert {e["pointer"] for e in errors_of(r.json())} == {"/timezone"}


def test_kind_specific_fields_are_refused_on_other_kinds(client, tenant):
    author = tenant.headers(Role.AUTHOR)
    member = published_member(client, author)
    r = client.post(
        "/v1/triggers",
        json={"kind": "webhook", "member_id": member["id"], "name": "x", "cron": "0 * * * *"},
        headers=author,
    )
    assert r.status_code == 400
    assert errors_of(r.json())[0]["pointer"] == "/cron"
    missing = client.post(
        "/v1/triggers",
        json={"kind": "schedule", "member_id": member["id"], "name": "x"},
        headers=author,
    )
    assert missing.status_code == 400
    assert errors_of(missing.json())[0]["reason"] == "required"


def test_the_member_must_exist_and_be_published(client, tenant):
    author = tenant.headers(Role.AUTHOR)
    unknown = client.post(
        "/v1/triggers",
        json={"kind": "webhook", "member_id": missing_id("mem"), "name": "x"},
        headers=author,
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["details"] == {"pointer": "/member_id"}
    draft = create_member(client, author, create_crew(client, author)["id"])
    r = client.post(
        "/v1/triggers",
        json={"kind": "webhook", "member_id": draft["id"], "name": "x"},
        headers=author,
    )
    assert r.status_code == 409
    assert r.json()["type"] == "/problems/member-not-published"


def test_a_schedule_input_must_satisfy_the_members_input_schema(client, tenant):
    author = tenant.headers(Role.AUTHOR)
    definition = {
        "objective": "Triage one ticket.",
        "input_schema": {
            "type": "object",
            "required": ["ticket"],
            "properties": {"ticket": {"type": "integer"}},
        },
    }
    member = published_member(client, author, definition)
    r = client.post(
        "/v1/triggers",
        json={
            "kind": "schedule",
            "member_id": member["id"],
            "name": "x",
            "cron": "0 * * * *",
            "input": {"ticket": "seven"},
        },
        headers=author,
    )
    assert r.status_code == 409
    assert r.json()["type"] == "/problems/input-schema-mismatch"
    assert errors_of(r.json())[0]["pointer"] == "/input/ticket"


def test_mail_triggers_are_deferred_after_role_and_member_checks(client, tenant):
    member = published_member(client, tenant.headers(Role.AUTHOR))
    body = {"kind": "mail", "member_id": member["id"], "name": "Inbox"}
    r = client.post("/v1/triggers", json=body, headers=tenant.headers(Role.AUTHOR))
    assert r.status_code == 501
    assert r.json()["error"]["code"] == "NotImplemented"
    denied = client.post("/v1/triggers", json=body, headers=tenant.headers(Role.OPERATOR))
    assert denied.status_code == 403
    unknown = client.post(
        "/v1/triggers",
        json={**body, "member_id": missing_id("mem")},
        headers=tenant.headers(Role.AUTHOR),
    )
    assert unknown.status_code == 404


def test_roles_author_changes_viewer_reads(client, tenant):
    author = tenant.headers(Role.AUTHOR)
    member = published_member(client, author)
    trigger = create_trigger(client, author, member["id"], "webhook")
    operator = tenant.headers(Role.OPERATOR)
    body = {"kind": "webhook", "member_id": member["id"], "name": "x"}
    assert client.post("/v1/triggers", json=body, headers=operator).status_code == 403
    for action in ("enable", "disable"):
        r = client.post(f"/v1/triggers/{trigger['id']}/{action}", headers=operator)
        assert r.status_code == 403
    assert client.delete(f"/v1/triggers/{trigger['id']}", headers=operator).status_code == 403
    viewer = tenant.headers(Role.VIEWER)
    for path in ("", "/invocations"):
        assert client.get(f"/v1/triggers/{trigger['id']}{path}", headers=viewer).status_code == 200
    assert client.get("/v1/schedules", headers=viewer).status_code == 200


def test_enable_and_disable_are_idempotent(client, tenant):
    author = tenant.headers(Role.AUTHOR)
    member = published_member(client, author)
    trigger = create_trigger(client, author, member["id"], "schedule", cron="@daily")
    path = f"/v1/triggers/{trigger['id']}"
    for _ in range(2):
        r = client.post(f"{path}/disable", headers=author)
        assert r.status_code == 200 and r.json()["enabled"] is False
    assert client.get(path, headers=author).json()["enabled"] is False
    for _ in range(2):
        r = client.post(f"{path}/enable", headers=author)
        assert r.status_code == 200 and r.json()["enabled"] is True


def test_a_deleted_trigger_is_gone_from_every_read(client, tenant):
    author = tenant.headers(Role.AUTHOR)
    member = published_member(client, author)
    trigger = create_trigger(client, author, member["id"], "webhook")
    path = f"/v1/triggers/{trigger['id']}"
    listed = client.get("/v1/triggers", headers=author).json()["items"]
    assert [t["id"] for t in listed] == [trigger["id"]]
    assert client.delete(path, headers=author).status_code == 204
    assert client.get(path, headers=author).status_code == 404
    assert client.get(f"{path}/invocations", headers=author).status_code == 404
    assert client.post(f"{path}/enable", headers=author).status_code == 404
    assert client.delete(path, headers=author).status_code == 404
    assert client.get("/v1/triggers", headers=author).json()["items"] == []


def test_triggers_list_by_kind_with_cursor_pages(client, tenant):
    author = tenant.headers(Role.AUTHOR)
    member = published_member(client, author)
    hooks = [create_trigger(client, author, member["id"], "webhook")["id"] for _ in range(3)]
    create_trigger(client, author, member["id"], "schedule", cron="@daily")
    seen, cursor = [], None
    while True:
        query = {"kind": "webhook", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/triggers", params=query, headers=author).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == hooks
    everything = client.get("/v1/triggers", headers=author).json()["items"]
    assert len(everything) == 4
