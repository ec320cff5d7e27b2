"""Conversational authoring sessions."""

from __future__ import annotations

from typing import Any

from domain.authoring import approval_preview
from handlers import serialise
from handlers._http import actor, ok, use_cases


def create_authoring_session(token_info: dict[str, Any], body: dict[str, Any]) -> Any:
    session = use_cases().authoring.create_authoring_session(
        actor(token_info), body["crew_id"], body.get("member_id")
    )
    return ok(
        serialise.authoring_session(session),
        201,
        {"Location": f"/v1/authoring/sessions/{session.id}"},
    )


def get_authoring_session(token_info: dict[str, Any], session_id: str) -> Any:
    session = use_cases().authoring.get_authoring_session(actor(token_info), session_id)
    return ok(serialise.authoring_session(session))


def take_authoring_turn(token_info: dict[str, Any], session_id: str, body: dict[str, Any]) -> Any:
    result = use_cases().authoring.take_authoring_turn(
        actor(token_info), session_id, body["message"]
    )
    return ok(
        {
            "reply": result.reply,
            "draft": result.definition.to_json(),
            "approval_preview": approval_preview(result.definition),
            "session": serialise.authoring_session(result.session),
        }
    )
