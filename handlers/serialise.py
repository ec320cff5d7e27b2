"""Domain objects to the JSON shapes of openapi.yaml's response schemas."""

from __future__ import annotations

from typing import Any

from domain.model import Crew, HandoffSet, Member, Membership, Version, Workspace
from handlers._http import timestamp


def workspace(w: Workspace) -> dict[str, Any]:
    return {
        "id": w.id,
        "tenant_id": w.tenant_id,
        "name": w.name,
        "description": w.description,
        "created_at": timestamp(w.created_at),
        "updated_at": timestamp(w.updated_at),
    }


def membership(m: Membership, current_workspace_id: str) -> dict[str, Any]:
    return {
        "workspace_id": m.workspace_id,
        "name": m.workspace_name,
        "role": m.role.label,
        "current": m.workspace_id == current_workspace_id,
    }


def crew(c: Crew) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "created_at": timestamp(c.created_at),
        "updated_at": timestamp(c.updated_at),
    }


def member(m: Member) -> dict[str, Any]:
    return {
        "id": m.id,
        "crew_id": m.crew_id,
        "name": m.name,
        "description": m.description,
        "status": m.status,
        "active_version_id": m.active_version_id,
        "active_version_number": m.active_version_number,
        "draft_version_number": m.draft_version_number,
        "identity": m.identity,
        "created_at": timestamp(m.created_at),
        "updated_at": timestamp(m.updated_at),
    }


def version(v: Version) -> dict[str, Any]:
    return {
        "id": v.id,
        "member_id": v.member_id,
        "number": v.number,
        "status": v.status.value,
        "definition": v.definition.to_json(),
        "program": v.program,
        "artifact_hash": v.artifact_hash,
        "created_at": timestamp(v.created_at),
        "created_by": v.created_by,
        "updated_at": timestamp(v.updated_at),
        "published_at": timestamp(v.published_at),
        "published_by": v.published_by,
    }


def handoff_set(h: HandoffSet) -> dict[str, Any]:
    return {
        "member_id": h.member_id,
        "handoffs": [
            {
                "target_member_id": item.target_member_id,
                "condition": None
                if item.condition is None
                else {
                    "output_field": item.condition.output_field,
                    "equals": item.condition.equals,
                },
                "position": position,
            }
            for position, item in enumerate(h.handoffs)
        ],
        "updated_at": timestamp(h.updated_at),
    }
