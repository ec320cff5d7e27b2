"""Members, their drafts, publishing and versions; the ScaiFlow export is deferred (501)."""

from __future__ import annotations

from typing import Any

from domain.members import Definition
from handlers import serialise
from handlers._http import actor, ok, page, page_body, use_cases
from handlers.etags import conditional, if_match, tagged
from handlers.problems import ApiError


def list_members(
    token_info: dict[str, Any],
    limit: int = 50,
    cursor: str | None = None,
    crew_id: str | None = None,
    status: str | None = None,
    q: str | None = None,
    include_archived: bool = False,
    include_total: bool = False,
) -> Any:
    result = use_cases().members.list_members(
        actor(token_info),
        page(limit, cursor, include_total),
        crew_id=crew_id,
        status=status,
        name_contains=q,
        include_archived=include_archived,
    )
    return ok(page_body(result, serialise.member))


def create_member(token_info: dict[str, Any], body: dict[str, Any]) -> Any:
    member = use_cases().members.create_member(
        actor(token_info),
        crew_id=body["crew_id"],
        name=body["name"],
        description=body.get("description", ""),
        definition=Definition.from_json(body["definition"]),
    )
    return tagged(serialise.member(member), 201, {"Location": f"/v1/members/{member.id}"})


def get_member(token_info: dict[str, Any], member_id: str) -> Any:
    member = use_cases().members.get_member(actor(token_info), member_id)
    return conditional(serialise.member(member))


def update_member(token_info: dict[str, Any], member_id: str, body: dict[str, Any]) -> Any:
    member = use_cases().members.update_member(
        actor(token_info),
        member_id,
        name=body.get("name"),
        crew_id=body.get("crew_id"),
        if_match=if_match(serialise.member),
    )
    return tagged(serialise.member(member))


def delete_member(token_info: dict[str, Any], member_id: str) -> Any:
    use_cases().members.delete_member(actor(token_info), member_id)
    return None, 204


def archive_member(token_info: dict[str, Any], member_id: str) -> Any:
    member = use_cases().members.archive_member(actor(token_info), member_id)
    return tagged(serialise.member(member))


def unarchive_member(token_info: dict[str, Any], member_id: str) -> Any:
    member = use_cases().members.unarchive_member(actor(token_info), member_id)
    return tagged(serialise.member(member))


def get_member_draft(token_info: dict[str, Any], member_id: str) -> Any:
    version = use_cases().members.get_member_draft(actor(token_info), member_id)
    return conditional(serialise.version(version))


def replace_member_draft(token_info: dict[str, Any], member_id: str, body: dict[str, Any]) -> Any:
    version = use_cases().members.replace_member_draft(
        actor(token_info),
        member_id,
        Definition.from_json(body),
        if_match=if_match(serialise.version),
    )
    return tagged(serialise.version(version))


def publish_member(token_info: dict[str, Any], member_id: str) -> Any:
    version = use_cases().members.publish_member(actor(token_info), member_id)
    return ok(serialise.version(version))


def list_member_versions(
    token_info: dict[str, Any],
    member_id: str,
    limit: int = 50,
    cursor: str | None = None,
    status: str | None = None,
    include_total: bool = False,
) -> Any:
    result = use_cases().members.list_member_versions(
        actor(token_info), member_id, page(limit, cursor, include_total), status
    )
    return ok(page_body(result, serialise.version))


def get_member_version(token_info: dict[str, Any], member_id: str, number: int) -> Any:
    version = use_cases().members.get_member_version(actor(token_info), member_id, number)
    return ok(serialise.version(version))


def get_member_version_diff(
    token_info: dict[str, Any], member_id: str, number: int, against: int
) -> Any:
    diff = use_cases().members.diff_member_versions(actor(token_info), member_id, number, against)
    return ok(serialise.version_diff(member_id, number, against, diff))


def restore_member_version(token_info: dict[str, Any], member_id: str, number: int) -> Any:
    version = use_cases().members.restore_member_version(
        actor(token_info), member_id, number, if_match=if_match(serialise.version)
    )
    return tagged(serialise.version(version))


def export_member_to_scaiflow(token_info: dict[str, Any], member_id: str) -> Any:
    use_cases().members.check_member_action(actor(token_info), member_id)
    raise ApiError(501, "The 'Open in ScaiFlow' export is not implemented yet.")
