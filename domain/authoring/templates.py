"""The template catalog: member definitions shipped as data files, installed as member drafts.

Each ``template_catalog/*.json`` file holds ``ref``, ``name``, ``summary``, ``tags``,
``parameters`` (``name``, ``description``, ``required``, ``default``) and a ``definition`` whose
strings may contain ``${parameter}`` placeholders. Installing fills them in and creates the
member through the same path as every other origin (``members.add_member_with_draft``); the
use cases are ``Authoring``'s (``use_cases.py``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from domain.kernel.errors import RuleViolation
from domain.members import Definition

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
