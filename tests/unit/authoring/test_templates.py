"""The shipped template catalog: every template is valid, parameters are checked."""

from __future__ import annotations

import json

import pytest

from domain.authoring import Authoring, OfflineDeriver, templates
from domain.kernel import (
    Actor,
    ManualClock,
    NotFound,
    PageRequest,
    PermissionDenied,
    Role,
    RuleViolation,
)
from domain.members import check_definition
from tests.unit.fakes import FakeStore

CATALOG = templates.catalog()
VIEWER = Actor(workspace_id="wsp_x", subject="someone", role=Role.VIEWER)
AUTHORING = Authoring(FakeStore(), ManualClock(), OfflineDeriver())


def dummy(template: templates.Template) -> dict[str, str]:
    return {p.name: f"value-of-{p.name}" for p in template.parameters}


def test_at_least_eight_templates_ship_with_unique_refs():
    assert len(CATALOG) >= 8
    refs = [t.ref for t in CATALOG]
    assert len(set(refs)) == len(refs) and refs == sorted(refs)
    files = sorted(p.stem for p in templates.CATALOG_DIR.glob("*.json"))
    assert files == refs  # each file is named after its ref


@pytest.mark.parametrize("template", CATALOG, ids=[t.ref for t in CATALOG])
class TestEveryTemplate:
    def test_it_fills_into_a_valid_definition_without_placeholders(self, template):
        definition = template.filled(dummy(template))
        check_definition(definition, "/definition")
        text = json.dumps(definition.to_json())
        assert "${" not in text
        for p in template.parameters:
            if p.name in json.dumps(template.definition):
                assert f"value-of-{p.name}" in text

    def test_required_parameters_suffice(self, template):
        required = {p.name: "x" for p in template.parameters if p.required}
        check_definition(template.filled(required), "/definition")

    def test_every_placeholder_is_a_declared_parameter_and_every_parameter_is_used(self, template):
        used = set(templates._PLACEHOLDER.findall(json.dumps(template.definition)))
        declared = {p.name for p in template.parameters}
        assert used == declared

    def test_it_has_a_summary_and_tags(self, template):
        assert template.name and template.summary and template.tags
        assert all(t == t.lower() and " " not in t for t in template.tags)
        assert all(p.required or p.default is not None for p in template.parameters)


class TestParameters:
    template = next(t for t in CATALOG if any(p.required for p in t.parameters))

    def test_a_missing_required_parameter_is_named(self):
        missing = next(p for p in self.template.parameters if p.required)
        values = {k: v for k, v in dummy(self.template).items() if k != missing.name}
        with pytest.raises(RuleViolation) as caught:
            self.template.filled(values)
        assert caught.value.rule == "template-parameters"
        assert caught.value.pointer == f"/parameters/{missing.name}"

    def test_an_empty_required_parameter_is_missing(self):
        missing = next(p for p in self.template.parameters if p.required)
        with pytest.raises(RuleViolation):
            self.template.filled({**dummy(self.template), missing.name: ""})

    def test_an_unknown_parameter_is_named(self):
        with pytest.raises(RuleViolation) as caught:
            self.template.filled({**dummy(self.template), "bogus": "x"})
        assert caught.value.pointer == "/parameters/bogus"

    def test_a_value_that_looks_like_a_placeholder_is_not_expanded_again(self):
        first = self.template.parameters[0].name
        filled = self.template.filled({**dummy(self.template), first: "${" + first + "}"})
        assert "${" + first + "}" in json.dumps(filled.to_json())


class TestSearch:
    def page(self, **kw):
        return AUTHORING.list_templates(VIEWER, PageRequest(limit=50, cursor=None), **kw)

    def test_search_by_text_is_case_insensitive(self):
        assert [t.ref for t in self.page(text="INBOX").items] == ["inbox-triage"]

    def test_filter_by_tag(self):
        tag = CATALOG[0].tags[0]
        found = self.page(tag=tag).items
        assert found and all(tag in t.tags for t in found)
        assert self.page(tag="no-such-tag").items == []

    def test_get_unknown_is_not_found(self):
        with pytest.raises(NotFound):
            AUTHORING.get_template(VIEWER, "no-such-template")

    def test_install_needs_author(self):
        with pytest.raises(PermissionDenied):
            AUTHORING.install_template(VIEWER, CATALOG[0].ref, crew_id="crw_x", name="x")
