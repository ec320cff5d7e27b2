"""Real HTTP peers on loopback for the run vertical: a scriptable web server and a fake model.

Both are plain ``ThreadingHTTPServer``s on ``127.0.0.1`` with an ephemeral port. Handlers that
must be slow wait on a ``release`` event (set on ``close``) so a test never hangs on teardown.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0  # seconds to wait (interrupted by ``close``) before answering


Route = Callable[[Recorded], Reply]


@dataclass
class Peer:
    """A loopback HTTP server that records every request and answers through ``route``."""

    route: Route
    requests: list[Recorded] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def received(self, method: str | None = None, prefix: str = "") -> list[Recorded]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and r.path.startswith(prefix)
            ]

    def wait_for(self, count: int, prefix: str = "", timeout: float = 15.0) -> list[Recorded]:
        """Wait (bounded) until ``count`` requests under ``prefix`` arrived."""
        deadline = time.monotonic() + timeout
        while len(found := self.received(prefix=prefix)) < count:
            assert time.monotonic() < deadline, f"only {len(found)} request(s) to {prefix!r}"
            time.sleep(0.01)
        return found

    def start(self) -> Peer:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                recorded = Recorded(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                with peer._lock:
                    peer.requests.append(recorded)
                reply = peer.route(recorded)
                if reply.delay and peer.release.wait(reply.delay):
                    return  # closing: drop the connection unanswered
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:  # the client gave up (timed out) or died
                    pass

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def close(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def json_reply(value: Any, status: int = 200, delay: float = 0.0) -> Reply:
    return Reply(status, json.dumps(value).encode(), "application/json", delay)


def web_route(request: Recorded) -> Reply:
    """A small web site: ``/ok``, ``/slow``, ``/error``, ``/block-once`` and a POST sink.

    - ``/ok...``: 200 with a JSON body naming the path;
    - ``/slow...``: the same after 30 s (interrupted by ``close``);
    - ``/error...``: 500;
    - any POST: 201 echoing the JSON body it got.
    """
    if request.method == "POST":
        return json_reply({"received": request.json()}, 201)
    if request.path.startswith("/slow"):
        return json_reply({"path": request.path}, delay=30)
    if request.path.startswith("/error"):
        return json_reply({"error": "boom"}, 500)
    return json_reply({"path": request.path, "ok": True})


# -- a fake OpenAI-compatible chat-completions endpoint ----------------------------------------


def completion(
    *,
    content: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "test-model",
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def tool_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": raw}}


def run_input_of(payload: dict[str, Any]) -> dict[str, Any]:
    """The run input, as the engine hands it to the model (the first user message)."""
    for message in payload.get("messages", []):
        if message.get("role") == "user":
            value = json.loads(message.get("content") or "{}")
            return value if isinstance(value, dict) else {}
    return {}


def chat_route(request: Recorded) -> Reply:
    """Answer ``POST /v1/chat/completions`` by the ``scenario`` named in the run input.

    - ``notes``: first a ``notes_write`` tool call (key/value from the input), then, once the
      tool result is in the conversation, a final JSON object; 100+20 then 200+30 tokens;
    - ``text``: a final answer that is not JSON;
    - ``garbage``: 200 with a body that is not JSON; ``html``: 200 with JSON but no choices;
    - ``error``: HTTP 500; ``slow``: answers after 30 s (interrupted by ``close``);
    - ``bad_arguments``: a tool call whose arguments are not JSON;
    - ``unknown_tool``: a call to a tool the member does not declare;
    - ``nul_output`` / ``nul_arguments``: a NUL character in the answer / the call arguments;
    - ``loop``: a ``notes_read`` call every time, never an answer;
    - ``repeat_post``: two ``http_post`` calls to ``{url}/1`` and ``{url}/2``, both with the
      call id ``call_0``, then a final answer;
    - anything else: a final ``{}``.
    """
    if request.method != "POST" or request.path != "/v1/chat/completions":
        return json_reply({"error": "not found"}, 404)
    payload = request.json()
    scenario = run_input_of(payload).get("scenario")
    tool_results = [m for m in payload["messages"] if m.get("role") == "tool"]
    if scenario == "notes":
        if not tool_results:
            args = run_input_of(payload).get("note", {"key": "k", "value": "v"})
            return json_reply(
                completion(
                    tool_calls=[tool_call("call_a", "notes_write", args)],
                    prompt_tokens=100,
                    completion_tokens=20,
                )
            )
        result = json.loads(tool_results[-1]["content"])
        return json_reply(
            completion(
                content=json.dumps({"done": True, "written": result.get("written")}),
                prompt_tokens=200,
                completion_tokens=30,
            )
        )
    if scenario == "repeat_post":  # two POSTs under one reused call id (as some servers do)
        if len(tool_results) < 2:
            url = f"{run_input_of(payload)['url']}/{len(tool_results) + 1}"
            return json_reply(
                completion(
                    tool_calls=[
                        tool_call(
                            "call_0",
                            "http_post",
                            {"url": url, "body": {"n": len(tool_results) + 1}},
                        )
                    ]
                )
            )
        return json_reply(completion(content='{"posted": 2}'))
    if scenario == "loop":  # never stops calling tools
        call = tool_call(f"call_{len(tool_results)}", "notes_read", {"key": "k"})
        return json_reply(completion(tool_calls=[call], prompt_tokens=1, completion_tokens=1))
    if scenario == "nul_output":  # a NUL character, which PostgreSQL cannot store as text
        return json_reply(completion(content='{"answer": "a\\u0000b"}'))
    if scenario == "nul_arguments":
        call = tool_call("call_n", "notes_write", '{"key": "k\\u0000", "value": "v"}')
        return json_reply(completion(tool_calls=[call]))
    if scenario == "text":
        return json_reply(completion(content="All done.", prompt_tokens=5, completion_tokens=3))
    if scenario == "garbage":
        return Reply(200, b"<html>definitely not a completion</html>", "text/html")
    if scenario == "html":
        return json_reply({"choices": []})
    if scenario == "error":
        return json_reply({"error": {"message": "overloaded"}}, 500)
    if scenario == "slow":
        return json_reply(completion(content="{}"), delay=30)
    if scenario == "bad_arguments":
        return json_reply(completion(tool_calls=[tool_call("call_b", "notes_write", "{not json")]))
    if scenario == "unknown_tool":
        return json_reply(completion(tool_calls=[tool_call("call_c", "launch_rockets", {})]))
    return json_reply(completion(content="{}"))


# -- the same endpoint deriving member drafts (conversational authoring) -----------------------

DERIVED = {
    "name": "Ticket poster",
    "reply": "I drafted a strict member that posts ticket summaries.",
    "definition": {
        "objective": "Post a summary of new tickets.",
        "instructions": "Group tickets by product.",
        "rules": ["Never include customer names."],
        "rigidity": "strict",
        "tools": [
            {"name": "http_post", "effect_class": "external_write"},
            {"name": "notes_write", "effect_class": "internal"},
        ],
    },
}


def derive_route(request: Recorded) -> Reply:
    """Answer a deriver's chat request by the last ``derive:<scenario>`` word in the conversation.

    - ``valid``: the JSON object ``DERIVED``; ``retry``: text that is not JSON, then (once the
      deriver has said the answer was unusable) ``DERIVED``;
    - ``garbage``: never JSON; ``schema``: JSON missing ``reply``; ``effect``: ``http_get``
      declared ``internal``; ``nul``: a NUL character in the objective;
    - ``error``: HTTP 500; ``slow``: answers after 30 s (interrupted by ``close``).
    """
    if request.method != "POST" or request.path != "/v1/chat/completions":
        return json_reply({"error": "not found"}, 404)
    messages = request.json()["messages"]
    said = " ".join(m["content"] for m in messages if m["role"] == "user")
    retried = "unusable" in said
    # The latest ``derive:`` word decides (earlier turns of the conversation are re-sent).
    scenario = said.rsplit("derive:", 1)[1].split()[0].strip(".") if "derive:" in said else ""

    def answer(value: Any) -> Reply:
        text = value if isinstance(value, str) else json.dumps(value)
        return json_reply(completion(content=text, prompt_tokens=10, completion_tokens=10))

    if scenario == "retry":
        return answer(DERIVED if retried else "Sure! Here is your member: {objective: ...")
    if scenario == "garbage":
        return answer("I am not JSON")
    if scenario == "schema":
        return answer({"name": "x", "definition": {"objective": "x"}})
    if scenario == "effect":
        bad = {"objective": "x", "tools": [{"name": "http_get", "effect_class": "internal"}]}
        return answer({**DERIVED, "definition": bad})
    if scenario == "nul":
        return answer({**DERIVED, "definition": {"objective": "a\u0000b"}})
    if scenario == "error":
        return json_reply({"error": {"message": "overloaded"}}, 500)
    if scenario == "slow":
        return json_reply(completion(content=json.dumps(DERIVED)), delay=30)
    return answer(DERIVED)
