"""The chat-completions deriver against a real local HTTP server speaking the protocol."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from domain.authoring import ModelUnusable
from domain.members import Definition, Rigidity
from scaicrew.adapters.model_deriver import ChatCompletionsDeriver
from tests.support.peers import DERIVED, Peer, derive_route


@pytest.fixture(scope="module")
def peer() -> Iterator[Peer]:
    server = Peer(derive_route).start()
    yield server
    server.close()


@pytest.fixture
def deriver(peer: Peer) -> ChatCompletionsDeriver:
    return ChatCompletionsDeriver(peer.url("/v1/"), "sk-derive", "derive-model", 1.0)


def calls(peer: Peer, marker: str) -> list[dict]:
    return [
        r.json()
        for r in peer.received("POST", "/v1/chat/completions")
        if any(marker in m["content"] for m in r.json()["messages"])
    ]


class TestValidAnswers:
    def test_a_valid_json_answer_is_the_draft(self, deriver, peer):
        marker = "m-valid-1"
        derivation = deriver.derive([f"Post ticket summaries {marker} derive:valid"], None)
        assert derivation.name == DERIVED["name"]
        assert derivation.reply == DERIVED["reply"]
        assert derivation.definition == Definition.from_json(DERIVED["definition"])
        assert derivation.definition.rigidity is Rigidity.STRICT
        [payload] = calls(peer, marker)
        assert payload["model"] == "derive-model"
        assert payload["response_format"] == {"type": "json_object"}
        assert payload["messages"][0]["role"] == "system"
        assert "JSON Schema" in payload["messages"][0]["content"]
        recorded = [r for r in peer.received("POST") if marker in r.body.decode()]
        assert recorded[0].headers["authorization"] == "Bearer sk-derive"

    def test_the_whole_conversation_and_the_base_are_sent(self, deriver, peer):
        marker = "m-base-1"
        base = Definition.from_json({"objective": "Keep the base objective."})
        deriver.derive([f"first {marker}", "second derive:valid"], base)
        [payload] = calls(peer, marker)
        users = [m["content"] for m in payload["messages"] if m["role"] == "user"]
        assert users == [f"first {marker}", "second derive:valid"]
        systems = [m["content"] for m in payload["messages"] if m["role"] == "system"]
        assert any("Keep the base objective." in s for s in systems)

    def test_invalid_json_then_valid_succeeds_after_one_retry(self, deriver, peer):
        marker = "m-retry-1"
        derivation = deriver.derive([f"{marker} derive:retry"], None)
        assert derivation.definition == Definition.from_json(DERIVED["definition"])
        first, second = calls(peer, marker)
        assert "unusable" in second["messages"][-1]["content"]
        assert "not valid JSON" in second["messages"][-1]["content"]
        assert len(first["messages"]) + 1 == len(second["messages"])


class TestUnusableAnswers:
    @pytest.mark.parametrize("scenario", ["garbage", "schema", "effect", "nul"])
    def test_an_unusable_answer_twice_is_rejected_after_exactly_one_retry(
        self, deriver, peer, scenario
    ):
        marker = f"m-bad-{scenario}"
        with pytest.raises(ModelUnusable) as caught:
            deriver.derive([f"{marker} derive:{scenario}"], None)
        assert "unusable twice" in caught.value.message
        assert len(calls(peer, marker)) == 2

    def test_an_http_error_is_unusable_without_retry(self, deriver, peer):
        marker = "m-error-1"
        with pytest.raises(ModelUnusable, match="HTTP 500"):
            deriver.derive([f"{marker} derive:error"], None)
        assert len(calls(peer, marker)) == 1

    def test_a_timeout_is_unusable(self, deriver):
        with pytest.raises(ModelUnusable, match="could not be reached"):
            deriver.derive(["m-slow-1 derive:slow"], None)

    def test_an_endpoint_that_is_down_is_unusable(self):
        peer = Peer(derive_route).start()
        url = peer.url("/v1/")
        peer.close()
        down = ChatCompletionsDeriver(url, "", "m", 1.0)
        with pytest.raises(ModelUnusable, match="could not be reached"):
            down.derive(["derive:valid"], None)

    def test_a_body_that_is_not_a_completion_is_unusable(self, peer):
        wrong = ChatCompletionsDeriver(peer.url("/nowhere/"), "", "m", 1.0)
        with pytest.raises(ModelUnusable, match="HTTP 404"):
            wrong.derive(["derive:valid"], None)
