"""Crews: groupings of members inside a workspace."""

from __future__ import annotations

from typing import Any

from handlers import serialise
from handlers._http import actor, ok, page, page_body, use_cases
from handlers.etags import conditional, if_match, tagged


def list_crews(
    token_info: dict[str, Any],
    limit: int = 50,
    cursor: str | None = None,
    q: str | None = None,
    include_total: bool = False,
) -> Any:
    result = use_cases().members.list_crews(
        actor(token_info), page(limit, cursor, include_total), q
    )
    return ok(page_body(result, serialise.crew))


def create_crew(token_info: dict[str, Any], body: dict[str, Any]) -> Any:
    crew = use_cases().members.create_crew(
        actor(token_info), body["name"], body.get("description", "")
    )
    return tagged(serialise.crew(crew), 201, {"Location": f"/v1/crews/{crew.id}"})


def get_crew(token_info: dict[str, Any], crew_id: str) -> Any:
    return conditional(serialise.crew(use_cases().members.get_crew(actor(token_info), crew_id)))


def update_crew(token_info: dict[str, Any], crew_id: str, body: dict[str, Any]) -> Any:
    crew = use_cases().members.update_crew(
        actor(token_info),
        crew_id,
        name=body.get("name"),
        description=body.get("description"),
        if_match=if_match(serialise.crew),
    )
    return tagged(serialise.crew(crew))


def delete_crew(token_info: dict[str, Any], crew_id: str) -> Any:
    use_cases().members.delete_crew(actor(token_info), crew_id)
    return None, 204


def list_crew_members(
    token_info: dict[str, Any],
    crew_id: str,
    limit: int = 50,
    cursor: str | None = None,
    include_archived: bool = False,
    include_total: bool = False,
) -> Any:
    result = use_cases().members.list_crew_members(
        actor(token_info),
        crew_id,
        page(limit, cursor, include_total),
        include_archived=include_archived,
    )
    return ok(page_body(result, serialise.member))
