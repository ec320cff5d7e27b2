"""The template catalog: member definitions shipped as data files, installed as member drafts.

Each ``template_catalog/*.json`` file holds ``ref``, ``name``, ``summary``, ``tags``,
``parameters`` (``name``, ``description``, ``required``, ``default``) and a ``definition`` whose
strings may contain ``${parameter}`` placeholders. Installing fills them in and creates the
member through the same path as every other origin (``services.add_member_with_draft``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from domain import services
from domain.errors import NotFound, RuleViolation
from domain.model import Actor, Definition, Member, Page, PageRequest, Role, page_of
from domain.unit_of_work import UnitOfWorkFactory

CATALOG_DIR = Path(__file__).resolve().parent / "template_catalog"
_PLACEHOLDER = re.compile(r"\$\{([a-z][a-z0-9_]*)\}")


@dataclass(frozen=True)
class TemplateParameter:
    name: str
    description: str
    required: bool
    default: str | None


@dataclass(frozen=True)
class Template:
    ref: str
    name: str
    summary: str
    tags: tuple[str, ...]
    parameters: tuple[TemplateParameter, ...]
    definition: dict[str, Any] = field(hash=False)

    def filled(self, values: dict[str, str]) -> Definition:
        """The definition with every placeholder replaced.

        :raises RuleViolation: a required parameter is missing or an unknown one is given.
        """
        known = {p.name for p in self.parameters}
        for name in sorted(values):
            if name not in known:
                raise RuleViolation(
                    "template-parameters",
                    f"/parameters/{name}: template '{self.ref}' has no parameter '{name}'.",
                    f"/parameters/{name}",
                )
        resolved: dict[str, str] = {}
        for p in self.parameters:
            value = values.get(p.name, p.default)
            if value is None or (p.required and value == ""):
                raise RuleViolation(
                    "template-parameters",
                    f"/parameters/{p.name}: template '{self.ref}' requires '{p.name}'.",
                    f"/parameters/{p.name}",
                )
            resolved[p.name] = value
        return Definition.from_json(_fill(self.definition, resolved))


def _fill(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, str):
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), node)
    if isinstance(node, list):
        return [_fill(item, values) for item in node]
    if isinstance(node, dict):
        return {key: _fill(value, values) for key, value in node.items()}
    return node


@cache
def catalog() -> tuple[Template, ...]:
    """Every shipped template, ordered by ref (read once per process)."""
    templates = []
    for path in sorted(CATALOG_DIR.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        templates.append(
            Template(
                ref=raw["ref"],
                name=raw["name"],
                summary=raw["summary"],
                tags=tuple(raw["tags"]),
                parameters=tuple(
                    TemplateParameter(
                        p["name"], p["description"], bool(p["required"]), p.get("default")
                    )
                    for p in raw["parameters"]
                ),
                definition=raw["definition"],
            )
        )
    return tuple(sorted(templates, key=lambda t: t.ref))


def list_templates(
    actor: Actor, page: PageRequest, *, text: str | None = None, tag: str | None = None
) -> Page[Template]:
    """Search the catalog by text (name, summary, ref) and tag; ordered by ref."""
    actor.require(Role.VIEWER)
    needle = text.lower() if text else None
    # Cursors are opaque ``[0-9a-z_]`` strings: the ref with '-' as '_' (refs never hold '_').
    after = None if page.cursor is None else page.cursor.replace("_", "-")
    rows = [
        t
        for t in catalog()
        if (after is None or t.ref > after)
        and (tag is None or tag in t.tags)
        and (needle is None or needle in f"{t.ref} {t.name} {t.summary}".lower())
    ]
    return page_of(rows[: page.limit + 1], page, lambda t: t.ref.replace("-", "_"))


def get_template(actor: Actor, ref: str) -> Template:
    """:raises NotFound: no template with this ref."""
    actor.require(Role.VIEWER)
    for template in catalog():
        if template.ref == ref:
            return template
    raise NotFound("template", ref)


def install_template(
    uow: UnitOfWorkFactory,
    actor: Actor,
    ref: str,
    *,
    crew_id: str,
    name: str,
    description: str = "",
    parameters: dict[str, str] | None = None,
) -> Member:
    """Create a member draft from a template, atomically.

    :raises PermissionDenied: the actor is below author.
    :raises NotFound: no template with this ref.
    :raises RuleViolation: parameters that do not fit, or a filled definition breaking a rule.
    :raises ReferencedResourceNotFound: no such crew.
    :raises DuplicateName: the member name is taken.
    """
    actor.require(Role.AUTHOR)
    template = get_template(actor, ref)
    definition = template.filled(parameters or {})
    services.check_definition(definition, "/definition")
    with uow(write=True) as tx:
        member = services.add_member_with_draft(
            tx,
            actor,
            crew_id=crew_id,
            name=name,
            description=description or template.summary,
            definition=definition,
        )
        tx.repo.append_audit(
            actor,
            "member.installed_from_template",
            "member",
            member.id,
            {"template": ref},
            member.created_at,
        )
        tx.commit()
    return member


def check_template_action(actor: Actor, ref: str) -> Template:
    """Gate for deferred template operations: author role and an existing template.

    :raises PermissionDenied: below author. :raises NotFound: no such template.
    """
    actor.require(Role.AUTHOR)
    return get_template(actor, ref)
