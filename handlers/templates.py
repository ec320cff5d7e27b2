"""The template catalog; upgrade is deferred (501)."""

from __future__ import annotations

from typing import Any

from domain.authoring import approval_preview
from domain.members import Definition
from handlers import serialise
from handlers._http import actor, ok, page, page_body, use_cases
from handlers.problems import ApiError


def list_templates(
    token_info: dict[str, Any],
    limit: int = 50,
    cursor: str | None = None,
    q: str | None = None,
    tag: str | None = None,
) -> Any:
    result = use_cases().authoring.list_templates(
        actor(token_info), page(limit, cursor), text=q, tag=tag
    )
    return ok(page_body(result, serialise.template_summary))


def get_template(token_info: dict[str, Any], ref: str) -> Any:
    template = use_cases().authoring.get_template(actor(token_info), ref)
    definition = Definition.from_json(template.definition)
    return ok(
        serialise.template_summary(template)
        | {
            "definition": definition.to_json(),
            "approval_preview": approval_preview(definition),
        }
    )


def install_template(token_info: dict[str, Any], ref: str, body: dict[str, Any]) -> Any:
    member = use_cases().authoring.install_template(
        actor(token_info),
        ref,
        crew_id=body["crew_id"],
        name=body["name"],
        description=body.get("description", ""),
        parameters=body.get("parameters") or {},
    )
    return ok(serialise.member(member), 201, {"Location": f"/v1/members/{member.id}"})


def upgrade_template(token_info: dict[str, Any], ref: str) -> Any:
    use_cases().authoring.check_template_action(actor(token_info), ref)
    raise ApiError(501, "Template upgrade is not implemented yet.")
