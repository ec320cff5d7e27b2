"""Every public handler is an operation of the contract, and every operationId names one."""

from __future__ import annotations

import importlib
import inspect

import pytest

from tests.api.helpers import operations, spec_document

RESOURCE_MODULES = [
    "handlers.system",
    "handlers.workspaces",
    "handlers.crews",
    "handlers.members",
    "handlers.handoffs",
]


def _operation_ids() -> list[str]:
    return [op["operationId"] for _, _, op, _ in operations()]


def _handler_modules() -> list[str]:
    """The five resource modules, plus any module an operationId points into."""
    named = {i.rpartition(".")[0] for i in _operation_ids()}
    return sorted(set(RESOURCE_MODULES) | named)


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
    def test_every_operation_has_a_unique_operation_id(self):
        ids = _operation_ids()
        assert all(ids)
        assert len(ids) == len(set(ids))

    @pytest.mark.parametrize("operation_id", _operation_ids())
    def test_each_operation_id_names_a_function(self, operation_id):
        module_name, _, function_name = operation_id.rpartition(".")
        module = importlib.import_module(module_name)
        assert inspect.isfunction(getattr(module, function_name, None)), operation_id

    @pytest.mark.parametrize("module_name", _handler_modules())
    def test_every_public_handler_function_is_an_operation(self, module_name):
        unreferenced = _public_functions(module_name) - set(_operation_ids())
        assert not unreferenced, f"public handlers with no operationId: {sorted(unreferenced)}"

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
