"""Handlers and operations match one to one, by the rule of ``handlers/operations.py``.

An operation's one tag names its module and its camelCase operationId, in snake_case, names the
function: a handler without an operation, or an operation without a handler, fails here.
"""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from handlers.operations import handler_path, handler_paths, snake_case
from tests.api.helpers import operations, spec_document

CAMEL_CASE = r"^[a-z][a-z0-9]*([A-Z][a-z0-9]*)*$"


def _operation_ids() -> list[str]:
    return [op["operationId"] for _, _, op, _ in operations()]


def _tag_modules() -> list[str]:
    return sorted({f"handlers.{t['name'].replace('-', '_')}" for t in spec_document()["tags"]})


def _public_functions(module_name: str) -> set[str]:
    module = importlib.import_module(module_name)
    return {
        f"{module_name}.{name}"
        for name, value in inspect.getmembers(module, inspect.isfunction)
        if not name.startswith("_") and value.__module__ == module_name
    }


def _link_operation_ids() -> list[str]:
    found = []
    for _, _, op, _ in operations():
        for response in op.get("responses", {}).values():
            for link in response.get("links", {}).values() if isinstance(response, dict) else []:
                found.append(link["operationId"])
    return found


class TestOperationIds:
    def test_every_operation_has_a_unique_camel_case_operation_id(self):
        ids = _operation_ids()
        assert len(ids) == len(set(ids))
        for operation_id in ids:
            assert re.match(CAMEL_CASE, operation_id), operation_id

    def test_every_operation_has_exactly_one_declared_tag(self):
        declared = {t["name"] for t in spec_document()["tags"]}
        for _, _, op, _ in operations():
            assert len(op.get("tags", [])) == 1, op["operationId"]
            assert op["tags"][0] in declared, op["operationId"]

    @pytest.mark.parametrize("operation_id", _operation_ids())
    def test_each_operation_id_names_a_handler_function(self, operation_id):
        module_name, _, function_name = handler_paths(spec_document())[operation_id].rpartition(".")
        module = importlib.import_module(module_name)
        assert inspect.isfunction(getattr(module, function_name, None)), (
            f"{operation_id}: no function {function_name} in {module_name}"
        )

    @pytest.mark.parametrize("module_name", _tag_modules())
    def test_every_public_function_of_a_tag_module_is_an_operation(self, module_name):
        served = set(handler_paths(spec_document()).values())
        unreferenced = _public_functions(module_name) - served
        assert not unreferenced, f"public handlers with no operation: {sorted(unreferenced)}"

    def test_the_rule_is_tag_module_and_snake_case_function(self):
        assert snake_case("listWorkspaceMemberships") == "list_workspace_memberships"
        assert handler_path("startRun", ["runs"]) == "handlers.runs.start_run"
        with pytest.raises(ValueError):
            handler_path("handlers.runs.start_run", ["runs"])
        with pytest.raises(ValueError):
            handler_path("startRun", ["runs", "members"])

    def test_every_link_names_an_existing_operation(self):
        ids = set(_operation_ids())
        links = _link_operation_ids()
        assert links, "the contract declares links"
        assert set(links) <= ids

    def test_every_security_function_named_by_the_spec_exists(self):
        schemes = spec_document()["components"]["securitySchemes"]
        for scheme in schemes.values():
            for key in ("x-bearerInfoFunc", "x-apikeyInfoFunc"):
                if key in scheme:
                    module_name, _, name = scheme[key].rpartition(".")
                    assert callable(getattr(importlib.import_module(module_name), name))
