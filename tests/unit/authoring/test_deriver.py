"""The offline deriver: deterministic, reading plain language into a valid whole definition."""

from __future__ import annotations

import pytest

from domain.authoring import OfflineDeriver
from domain.members import Definition, EffectClass, Rigidity, check_definition, needs_approval
from domain.tools import CATALOG

DERIVER = OfflineDeriver()


def derive(*messages: str, base: Definition | None = None) -> Definition:
    return DERIVER.derive(list(messages), base).definition


def tools_of(definition: Definition) -> dict[str, bool]:
    """Tool name -> whether it pauses for approval."""
    return {t.name: needs_approval(t, definition.rigidity) for t in definition.tools}


class TestDeterminism:
    def test_the_same_conversation_gives_the_same_draft_name_and_reply(self):
        conversation = ["Check the website every morning and post a summary to our webhook."]
        first = DERIVER.derive(conversation, None)
        assert all(DERIVER.derive(list(conversation), None) == first for _ in range(3))

    @pytest.mark.parametrize(
        "messages",
        [
            ["Summarise the day."],
            ["x"],
            ["Never do anything."],
            ["!!!"],
            ["Fetch the api, post to the webhook, take notes and recall previous notes."],
            ["a" * 4000],
            ["Be strict.", "Actually be autonomous.", "No, adaptive.", "Ask me first."],
        ],
    )
    def test_every_draft_is_valid(self, messages):
        derivation = DERIVER.derive(messages, None)
        check_definition(derivation.definition, "/draft")
        assert derivation.definition.objective
        assert 1 <= len(derivation.name) <= 100
        assert len(derivation.definition.objective) <= 2000
        assert Definition.from_json(derivation.definition.to_json()) == derivation.definition


class TestTools:
    @pytest.mark.parametrize(
        ("sentence", "tool"),
        [
            ("Fetch the status page website.", "http_get"),
            ("Notify the team through the webhook.", "http_post"),
            ("Recall what you wrote last time.", "notes_read"),
            ("Take notes about each ticket.", "notes_write"),
            ("Use http_post to deliver it.", "http_post"),
        ],
    )
    def test_catalog_tools_are_recognised_with_their_effect_class(self, sentence, tool):
        definition = derive(sentence)
        assert tool in tools_of(definition)
        [spec] = [t for t in definition.tools if t.name == tool]
        assert spec.effect_class is CATALOG[tool].effect_class
        assert spec.description == CATALOG[tool].description

    def test_no_tool_words_no_tools(self):
        assert derive("Summarise the day in three sentences.").tools == ()


class TestRigidity:
    @pytest.mark.parametrize(
        ("sentence", "rigidity"),
        [
            ("Summarise tickets.", Rigidity.GUIDED),
            ("Summarise tickets exactly as described.", Rigidity.STRICT),
            ("Summarise tickets; be flexible.", Rigidity.ADAPTIVE),
            ("Summarise tickets on its own.", Rigidity.AUTONOMOUS),
        ],
    )
    def test_rigidity_words(self, sentence, rigidity):
        assert derive(sentence).rigidity is rigidity

    def test_a_later_message_changes_the_rigidity(self):
        assert derive("Post alerts. Be strict.").rigidity is Rigidity.STRICT
        later = derive("Post alerts. Be strict.", "Actually, be flexible and adapt.")
        assert later.rigidity is Rigidity.ADAPTIVE


class TestApproval:
    def test_external_writes_pause_by_default(self):
        assert tools_of(derive("Post an alert to the webhook.")) == {"http_post": True}

    def test_without_approval_whitelists_external_tools(self):
        definition = derive("Fetch the website and post to the webhook without approval.")
        assert tools_of(definition) == {"http_get": False, "http_post": False}
        assert all(t.whitelisted for t in definition.tools)

    def test_internal_tools_are_never_whitelisted(self):
        definition = derive("Take notes automatically.")
        assert [(t.name, t.whitelisted) for t in definition.tools] == [("notes_write", False)]

    def test_a_later_wish_for_approval_overrides_an_earlier_one_without(self):
        first = derive("Post alerts to the webhook without approval.")
        assert tools_of(first) == {"http_post": False}
        later = derive("Post alerts to the webhook without approval.", "Actually, ask me first.")
        assert tools_of(later) == {"http_post": True}

    def test_strict_pauses_external_reads_too(self):
        definition = derive("Fetch the website. Be strict.")
        assert tools_of(definition) == {"http_get": True}


class TestRulesAndText:
    def test_rule_sentences_become_rules_and_the_rest_objective_and_instructions(self):
        definition = derive(
            "Summarise new tickets every morning. Group them by product.",
            "Never email customers. Always mention the ticket count.",
        )
        assert definition.objective == "Summarise new tickets every morning."
        assert definition.instructions == "Group them by product."
        assert definition.rules == ("Never email customers.", "Always mention the ticket count.")

    def test_a_base_definition_is_refined_not_replaced(self):
        base = Definition.from_json(
            {
                "objective": "Summarise tickets.",
                "instructions": "Group by product.",
                "rules": ["Never email customers."],
                "rigidity": "adaptive",
                "tools": [{"name": "read_queue", "effect_class": "external_read"}],
            }
        )
        definition = derive("Be strict. Never share names.", base=base)
        assert definition.objective == "Summarise tickets."
        assert definition.rules == ("Never email customers.", "Never share names.")
        assert definition.rigidity is Rigidity.STRICT
        assert [t.name for t in definition.tools] == ["read_queue"]
        assert definition.tools[0].effect_class is EffectClass.EXTERNAL_READ
        # Re-deriving with the previous result as the base does not repeat anything.
        again = derive("Be strict. Never share names.", base=definition)
        assert again == definition
