"""Domain objects to the JSON shapes of openapi.yaml's response schemas."""

from __future__ import annotations

from typing import Any

from domain.authoring import AuthoringSession, Template
from domain.cost import CostGroup, MemberCost
from domain.members import Change, Crew, DefinitionDiff, HandoffSet, Member, ToolSpec, Version
from domain.runs import Approval, Run, RunEvent
from domain.workspaces import Workspace, WorkspaceAccess
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


def workspace_access(m: WorkspaceAccess, current_workspace_id: str) -> dict[str, Any]:
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


def _tool(t: ToolSpec) -> dict[str, Any]:
    return {
        "name": t.name,
        "effect_class": t.effect_class.value,
        "whitelisted": t.whitelisted,
        "description": t.description,
    }


def _change(c: Change | None) -> dict[str, Any] | None:
    return None if c is None else {"before": c.before, "after": c.after}


def version_diff(member_id: str, number: int, against: int, d: DefinitionDiff) -> dict[str, Any]:
    return {
        "member_id": member_id,
        "number": number,
        "against": against,
        "identical": d.identical,
        "objective": _change(d.objective),
        "instructions": _change(d.instructions),
        "rigidity": _change(d.rigidity),
        "input_schema": _change(d.input_schema),
        "rules": {"added": list(d.rules_added), "removed": list(d.rules_removed)},
        "tools": {
            "added": [_tool(t) for t in d.tools_added],
            "removed": [_tool(t) for t in d.tools_removed],
            "changed": [
                {"name": c.name, "before": _tool(c.before), "after": _tool(c.after)}
                for c in d.tools_changed
            ],
        },
        "approvals": {"added": list(d.approvals_added), "removed": list(d.approvals_removed)},
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
        "archived": m.archived,
        "archived_at": timestamp(m.archived_at),
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


def run(r: Run) -> dict[str, Any]:
    return {
        "id": r.id,
        "member_id": r.member_id,
        "crew_id": r.crew_id,
        "version_id": r.version_id,
        "version_number": r.version_number,
        "origin": r.origin.value,
        "status": r.status.value,
        "dry_run": r.dry_run,
        "parent_run_id": r.parent_run_id,
        "depth": r.depth,
        "input": r.input,
        "output": r.output,
        "error": r.error,
        "created_by": r.created_by,
        "created_at": timestamp(r.created_at),
        "updated_at": timestamp(r.updated_at),
        "started_at": timestamp(r.started_at),
        "finished_at": timestamp(r.finished_at),
        "deadline_at": timestamp(r.deadline_at),
        "attempts": r.attempts,
        "tokens_in": r.tokens_in,
        "tokens_out": r.tokens_out,
        "cost_units": r.cost_units,
    }


def run_event(e: RunEvent) -> dict[str, Any]:
    return {"seq": e.seq, "type": e.type, "at": timestamp(e.at), "data": e.data}


def approval(a: Approval) -> dict[str, Any]:
    return {
        "id": a.id,
        "run_id": a.run_id,
        "member_id": a.member_id,
        "version_id": a.version_id,
        "version_number": a.version_number,
        "tool": a.tool,
        "effect_class": a.effect_class,
        "arguments": a.arguments,
        "status": a.status.value,
        "reason": a.reason,
        "decided_by": a.decided_by,
        "decided_at": timestamp(a.decided_at),
        "created_at": timestamp(a.created_at),
        "outcome_unknown": a.outcome_unknown,
        "expires_at": timestamp(a.expires_at),
        "budget_id": a.budget_id,
    }


def member_cost(c: MemberCost) -> dict[str, Any]:
    return {
        "member_id": c.member_id,
        "runs": c.runs,
        "tokens_in": c.tokens_in,
        "tokens_out": c.tokens_out,
        "cost_units": c.cost_units,
    }


def cost_group(g: CostGroup) -> dict[str, Any]:
    return {
        "key": g.key,
        "runs": g.runs,
        "tokens_in": g.tokens_in,
        "tokens_out": g.tokens_out,
        "cost_units": g.cost_units,
    }


def _draft(draft: dict[str, Any] | None) -> dict[str, Any] | None:
    # A draft without an input schema omits the member (DraftDefinition), it is not null.
    if draft is None:
        return None
    return {k: v for k, v in draft.items() if not (k == "input_schema" and v is None)}


def authoring_session(s: AuthoringSession) -> dict[str, Any]:
    return {
        "id": s.id,
        "crew_id": s.crew_id,
        "member_id": s.member_id,
        "messages": s.messages,
        "draft": _draft(s.draft),
        "approval_preview": s.approval_preview(),
        "created_at": timestamp(s.created_at),
        "updated_at": timestamp(s.updated_at),
    }


def template_summary(t: Template) -> dict[str, Any]:
    return {
        "ref": t.ref,
        "name": t.name,
        "summary": t.summary,
        "tags": list(t.tags),
        "parameters": [
            {
                "name": p.name,
                "description": p.description,
                "required": p.required,
                "default": p.default,
            }
            for p in t.parameters
        ],
    }
