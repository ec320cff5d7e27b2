"""Member input schemas: JSON Schema draft 7, local references only, checked before use."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError


def _remote_ref(node: Any) -> str | None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            return ref
        for value in node.values():
            found = _remote_ref(value)
            if found is not None:
                return found
    elif isinstance(node, list):
        for value in node:
            found = _remote_ref(value)
            if found is not None:
                return found
    return None


def nul_pointer(value: Any) -> str | None:
    """The JSON pointer of the first key or string in ``value`` holding a NUL character.

    PostgreSQL cannot store U+0000 in text or JSONB. Typed request strings exclude it by
    pattern (400); free-form JSON (input schemas, run inputs) is checked here instead.
    """
    pending: list[tuple[str, Any]] = [("", value)]  # iterative: nesting depth is unbounded
    while pending:
        pointer, node = pending.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return pointer
        elif isinstance(node, dict):
            for key, item in node.items():
                here = pointer + "/" + str(key).replace("~", "~0").replace("/", "~1")
                if "\x00" in str(key):
                    return here
                pending.append((here, item))
        elif isinstance(node, list):
            pending.extend((f"{pointer}/{index}", item) for index, item in enumerate(node))
    return None


def input_schema_problem(schema: dict[str, Any]) -> str | None:
    """Why ``schema`` cannot be used as an input schema, or None when it can."""
    if nul_pointer(schema) is not None:
        return "text may not contain NUL characters (U+0000)."
    remote = _remote_ref(schema)
    if remote is not None:
        return f"only local references are allowed, not '{remote[:100]}'."
    try:
        Draft7Validator.check_schema(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    except SchemaError as exc:
        return f"not a valid JSON Schema: {exc.message[:200]}"
    except Exception:  # e.g. a pattern the regex engine cannot compile
        return "not a valid JSON Schema."
    return None


def input_problems(schema: dict[str, Any], value: Any) -> list[dict[str, str]]:
    """Each way ``value`` breaks ``schema`` (a schema accepted by ``input_schema_problem``)."""
    try:
        errors = sorted(Draft7Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    except Exception:  # a schema that validates but cannot be applied (e.g. a bad $ref)
        return [
            {
                "pointer": "/input",
                "reason": "input_schema",
                "message": "The member's input schema could not be applied.",
            }
        ]
    return [
        {
            "pointer": "/input" + "".join(f"/{p}" for p in err.absolute_path),
            "reason": str(err.validator),
            "message": err.message[:300],
        }
        for err in errors[:20]
    ]
