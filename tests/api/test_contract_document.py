"""The contract as a document: no ``default`` responses, examples everywhere, and every example
valid against its (closed) schema, so what a reader copies from the spec works."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator

from tests.api.helpers import operations, resolve, spec_document
from tests.support.openapi_check import close_schema, closed_registry

REGISTRY_URI = "urn:scaicrew:contract"


def _media_types() -> list[tuple[str, str, dict[str, Any]]]:
    """(where, media type, media type object) of every request and response of the contract."""
    found = []
    for path, method, op, _ in operations():
        where = f"{op['operationId']} ({method.upper()} {path})"
        body = op.get("requestBody")
        if body:
            for media, obj in resolve(body)["content"].items():
                found.append((f"{where} request", media, obj))
        for status, response in op["responses"].items():
            for media, obj in resolve(response).get("content", {}).items():
                found.append((f"{where} {status}", media, obj))
    return found


def _examples(obj: dict[str, Any]) -> list[tuple[str, Any]]:
    if "example" in obj:
        return [("example", obj["example"])]
    return [(name, resolve(example)["value"]) for name, example in obj.get("examples", {}).items()]


def _validator(schema: dict[str, Any]) -> OAS30Validator:
    def rebase(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (REGISTRY_URI + v if k == "$ref" else rebase(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [rebase(v) for v in node]
        return node

    return OAS30Validator(rebase(close_schema(schema)), registry=closed_registry())


MEDIA_TYPES = _media_types()


class TestTheContractDocument:
    def test_no_operation_has_a_default_response(self):
        for _, _, op, _ in operations():
            assert "default" not in op["responses"], op["operationId"]

    @pytest.mark.parametrize(
        ("where", "media", "obj"), MEDIA_TYPES, ids=[m[0] for m in MEDIA_TYPES]
    )
    def test_every_request_and_response_has_examples_that_validate(self, where, media, obj):
        examples = _examples(obj)
        assert examples, f"{where} {media}: no example"
        validator = _validator(obj["schema"])
        for name, value in examples:
            errors = [e.message for e in validator.iter_errors(value)]
            assert not errors, f"{where} {media} example {name!r}: {errors}"

    def test_every_error_status_has_a_problem_example(self):
        for name, response in spec_document()["components"]["responses"].items():
            if name == "NotModified":  # 304: not an error, and it has no body
                continue
            examples = _examples(response["content"]["application/problem+json"])
            assert examples, name
            for _, value in examples:
                assert value["error"]["code"] and value["detail"] and value["instance"]

    def test_an_example_that_breaks_its_schema_is_caught(self):
        validator = _validator({"$ref": "#/components/schemas/Crew"})
        assert list(validator.iter_errors({"id": "crw_1", "name": "x"}))  # required missing
        good = resolve({"$ref": "#/components/examples/CreateCrew201"})["value"]
        assert not list(validator.iter_errors(good))
        assert list(validator.iter_errors({**good, "undeclared": 1}))  # closed copy
