"""Which handler serves which operation: one rule, no table.

An operation's single tag names the handler module and its operationId, in snake_case, names
the function: ``operationId: startRun`` with ``tags: [runs]`` is ``handlers.runs.start_run``.
``OperationResolver`` applies the rule for Connexion; ``tests/api/test_operation_ids.py`` checks
that handlers and operations match one to one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from connexion.resolver import Resolver

PACKAGE = "handlers"
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_CAMEL_ID = re.compile(r"^[a-z][a-zA-Z0-9]*$")


def snake_case(operation_id: str) -> str:
    """``listWorkspaceMemberships`` -> ``list_workspace_memberships``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()


def handler_path(operation_id: str, tags: list[str]) -> str:
    """The dotted path of the function serving an operation (see the module docstring)."""
    if not _CAMEL_ID.match(operation_id):
        raise ValueError(f"operationId {operation_id!r} is not lowerCamelCase")
    if len(tags) != 1:
        raise ValueError(f"operation {operation_id!r} must have exactly one tag, has {tags}")
    module = tags[0].replace("-", "_")
    return f"{PACKAGE}.{module}.{snake_case(operation_id)}"


def operations(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every (path, method, operation) of the document."""
    for path, item in spec["paths"].items():
        for method in _HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


def handler_paths(spec: Mapping[str, Any]) -> dict[str, str]:
    """operationId -> dotted handler path, for every operation of the document."""
    return {
        op["operationId"]: handler_path(op["operationId"], list(op.get("tags", [])))
        for _, _, op in operations(spec)
    }


class OperationResolver(Resolver):
    """Connexion resolver applying the tag + snake_case rule."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__()
        self._paths = handler_paths(spec)

    def resolve_operation_id(self, operation: Any) -> str:
        return self._paths[operation.operation_id]
