"""The chat-completions adapter against a real loopback server speaking the protocol."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from domain.runs import ModelError, ToolCall, Usage
from scaicrew.adapters.openai_model import ChatCompletionsModel
from tests.support.peers import Peer, Recorded, Reply, completion, json_reply, tool_call


class Scripted:
    """A route answering with whatever the test put in ``reply``."""

    def __init__(self) -> None:
        self.reply = json_reply(completion(content="{}"))

    def __call__(self, request: Recorded) -> Reply:
        return self.reply


@pytest.fixture(scope="module")
def script() -> Scripted:
    return Scripted()


@pytest.fixture(scope="module")
def server(script: Scripted) -> Iterator[Peer]:
    peer = Peer(script).start()
    yield peer
    peer.close()


def model(server: Peer, key: str = "sk-1", timeout: float = 2.0) -> ChatCompletionsModel:
    return ChatCompletionsModel(server.url("/v1/"), key, "m-1", timeout)


MESSAGES = [{"role": "system", "content": "s"}, {"role": "user", "content": "{}"}]
TOOLS = [{"type": "function", "function": {"name": "notes_read", "parameters": {}}}]


class TestRequest:
    def test_it_posts_the_conversation_tools_model_and_key(self, server, script):
        before = len(server.received())
        model(server).complete(MESSAGES, TOOLS)
        request = server.received()[before]
        assert (request.method, request.path) == ("POST", "/v1/chat/completions")
        assert request.headers["authorization"] == "Bearer sk-1"
        assert request.json() == {"model": "m-1", "messages": MESSAGES, "tools": TOOLS}

    def test_tool_server_tool_names_go_out_as_the_endpoint_accepts_them_and_come_back(
        self, server, script
    ):
        """`mcp:<server>/<tool>` breaks the endpoints' `^[A-Za-z0-9_-]{1,64}$`: it goes out
        renamed (in the tools and in earlier tool calls) and the model's call comes back by its
        real name."""
        mcp = {"type": "function", "function": {"name": "mcp:crm/lookup", "parameters": {}}}
        earlier = {
            "role": "assistant",
            "content": None,
            "tool_calls": [tool_call("c0", "mcp:crm/lookup", {"q": "a"})],
        }
        before = len(server.received())
        sent = model(server).complete(MESSAGES, TOOLS)  # a first call: the script is as it is
        assert sent is not None
        wire = None
        for _ in range(2):
            request_tools = [*TOOLS, mcp]
            if wire is not None:
                script.reply = json_reply(
                    completion(tool_calls=[tool_call("c1", wire, {"q": "b"})])
                )
            reply = model(server).complete([*MESSAGES, earlier], request_tools)
            payload = server.received()[-1].json()
            names = [t["function"]["name"] for t in payload["tools"]]
            assert names[0] == "notes_read"
            wire = names[1]
            assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", wire) and wire.startswith("mcp_crm_lookup")
            assert payload["messages"][-1]["tool_calls"][0]["function"]["name"] == wire
        assert reply.tool_calls == (ToolCall("c1", "mcp:crm/lookup", {"q": "b"}),)
        assert len(server.received()) == before + 3
        script.reply = json_reply(completion(content="{}"))

    def test_without_a_key_or_tools_it_sends_neither(self, server, script):
        before = len(server.received())
        model(server, key="").complete(MESSAGES, [])
        request = server.received()[before]
        assert "authorization" not in request.headers
        assert "tools" not in request.json()


class TestReplies:
    def test_tool_calls_and_usage(self, server, script):
        script.reply = json_reply(
            completion(
                tool_calls=[
                    tool_call("c1", "notes_read", {"key": "a"}),
                    tool_call("c2", "notes_write", {"key": "b", "value": "v"}),
                ],
                prompt_tokens=11,
                completion_tokens=7,
            )
        )
        reply = model(server).complete(MESSAGES, TOOLS)
        assert reply.tool_calls == (
            ToolCall("c1", "notes_read", {"key": "a"}),
            ToolCall("c2", "notes_write", {"key": "b", "value": "v"}),
        )
        assert reply.output is None
        assert reply.usage == Usage(11, 7)

    @pytest.mark.parametrize(
        ("content", "output"),
        [
            ('{"a": 1}', {"a": 1}),
            ("plain words", {"text": "plain words"}),
            ("[1, 2]", {"text": "[1, 2]"}),
            ("", {"text": ""}),
        ],
    )
    def test_a_final_answer_becomes_the_output(self, server, script, content, output):
        script.reply = json_reply(completion(content=content))
        assert model(server).complete(MESSAGES, []).output == output

    def test_missing_usage_counts_zero(self, server, script):
        body = completion(content="{}")
        del body["usage"]
        script.reply = json_reply(body)
        assert model(server).complete(MESSAGES, []).usage == Usage(0, 0)

    @pytest.mark.parametrize(
        "reply",
        [
            Reply(200, b"not json", "text/plain"),
            json_reply([1, 2, 3]),
            json_reply({"choices": []}),
            json_reply({"choices": [{"message": {"content": None}}]}),
            json_reply(
                {"choices": [{"message": {"content": "{}"}}], "usage": {"prompt_tokens": "many"}}
            ),
            json_reply(completion(tool_calls=[tool_call("c", "notes_read", "{broken")])),
            json_reply(completion(tool_calls=[tool_call("c", "notes_read", "[1]")])),
            json_reply({"choices": [{"message": {"tool_calls": [{"id": "c"}]}}]}),
        ],
        ids=[
            "not-json",
            "array",
            "no-choices",
            "no-content",
            "bad-usage",
            "broken-arguments",
            "array-arguments",
            "call-without-function",
        ],
    )
    def test_garbage_is_a_model_error(self, server, script, reply):
        script.reply = reply
        with pytest.raises(ModelError, match="not a chat completion"):
            model(server).complete(MESSAGES, TOOLS)

    @pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
    def test_an_error_status_is_a_model_error(self, server, script, status):
        script.reply = json_reply({"error": {"message": "secret internals"}}, status)
        with pytest.raises(ModelError) as failure:
            model(server).complete(MESSAGES, [])
        assert str(failure.value) == f"The model endpoint answered HTTP {status}."

    def test_a_slow_endpoint_times_out(self, server, script):
        script.reply = json_reply(completion(content="{}"), delay=30)
        with pytest.raises(ModelError, match=r"timed out after 0.3s"):
            model(server, timeout=0.3).complete(MESSAGES, [])

    def test_the_key_never_shows_in_errors(self, server, script):
        script.reply = json_reply({}, 401)
        with pytest.raises(ModelError) as failure:
            model(server, key="sk-very-secret").complete(MESSAGES, [])
        assert "sk-very-secret" not in str(failure.value)


def test_an_unreachable_endpoint_is_a_model_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ModelError, match="unreachable"):
        ChatCompletionsModel(f"http://127.0.0.1:{port}", "", "m", 1.0).complete(MESSAGES, [])
