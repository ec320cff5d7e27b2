"""The HTTP port of the built-in tools against real loopback servers: allow-list, a total
deadline, a bounded read, the call's Idempotency-Key."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from domain.tools import ToolError
from scaicrew.adapters.http_tools import MAX_BODY, AllowListedHttp
from tests.support.peers import Peer, web_route


@pytest.fixture(scope="module")
def web() -> Iterator[Peer]:
    peer = Peer(web_route).start()
    yield peer
    peer.close()


class TestAllowListedHttp:
    def test_get_and_post_reach_an_allow_listed_host(self, web):
        http = AllowListedHttp(("127.0.0.1",), 2.0)
        got = http.get(web.url("/ok/unit"))
        assert got == {
            "status": 200,
            "body": '{"path": "/ok/unit", "ok": true}',
            "json": {"path": "/ok/unit", "ok": True},
        }
        posted = http.post(web.url("/sink/unit"), {"a": [1, 2]})
        assert posted["status"] == 201 and posted["json"] == {"received": {"a": [1, 2]}}
        [request] = web.received("POST", "/sink/unit")
        assert request.json() == {"a": [1, 2]}
        assert request.headers["content-type"] == "application/json"

    def test_a_host_port_entry_allows_that_port_only(self, web):
        http = AllowListedHttp((f"127.0.0.1:{web.port}",), 2.0)
        assert http.get(web.url("/ok"))["status"] == 200
        with pytest.raises(ToolError, match="not on the tool allow-list"):
            http.get(f"http://127.0.0.1:{web.port + 1}/ok")

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("http://localhost/ok", "Host 'localhost' is not on the tool allow-list."),
            ("http://127.0.0.1.nip.io/", "is not on the tool allow-list"),
            ("http://user@evil.test/", "Host 'evil.test' is not on the tool allow-list."),
            ("ftp://127.0.0.1/", "absolute http(s) URL"),
            ("/relative", "absolute http(s) URL"),
            ("", "absolute http(s) URL"),
            ("http://h:8123:8124/", "The URL is malformed."),
            ("http://127.0.0.1:99999/", "The URL is malformed."),
            ("http://[::1/", "The URL is malformed."),
        ],
    )
    def test_anything_else_is_refused_before_any_request(self, web, url, message):
        before = len(web.received())
        with pytest.raises(ToolError) as failure:
            AllowListedHttp(("127.0.0.1",), 2.0).get(url)
        assert message in str(failure.value)
        assert len(web.received()) == before

    def test_an_empty_allow_list_refuses_everything(self, web):
        with pytest.raises(ToolError, match="not on the tool allow-list"):
            AllowListedHttp((), 2.0).get(web.url("/ok"))

    def test_a_slow_answer_times_out(self, web):
        with pytest.raises(ToolError, match=r"timed out after 0.3s"):
            AllowListedHttp(("127.0.0.1",), 0.3).get(web.url("/slow/unit"))

    def test_an_error_status_is_a_tool_error(self, web):
        with pytest.raises(ToolError, match="answered HTTP 500"):
            AllowListedHttp(("127.0.0.1",), 2.0).get(web.url("/error"))

    def test_the_call_s_stable_id_is_sent_as_idempotency_key(self, web):
        http = AllowListedHttp(("127.0.0.1",), 2.0)
        http.post(web.url("/sink/key"), {"a": 1}, idempotency_key="run_1.1.abc")
        http.get(web.url("/ok/key"), idempotency_key="run_1.2.abc")
        [posted] = web.received("POST", "/sink/key")
        [got] = web.received("GET", "/ok/key")
        assert posted.headers["idempotency-key"] == "run_1.1.abc"
        assert got.headers["idempotency-key"] == "run_1.2.abc"


class Trickle:
    """A raw loopback server answering 200 with a body of ``size`` bytes sent ``chunk`` bytes
    at a time, ``pause`` seconds apart."""

    def __init__(self, size: int, chunk: int, pause: float) -> None:
        self._size, self._chunk, self._pause = size, chunk, pause
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.sent = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {self._size}\r\n\r\n"
            try:
                conn.sendall(head.encode())
                while self.sent < self._size:
                    conn.sendall(b"x" * self._chunk)
                    self.sent += self._chunk
                    time.sleep(self._pause)
            except OSError:
                return

    def close(self) -> None:
        self._sock.close()


class TestBounds:
    def test_a_trickling_answer_is_cut_off_at_the_call_s_total_deadline(self):
        peer = Trickle(size=1000, chunk=1, pause=0.1)  # each read is quick, the whole is not
        try:
            began = time.monotonic()
            with pytest.raises(ToolError, match=r"timed out after 0.5s"):
                AllowListedHttp(("127.0.0.1",), 0.5).get(f"http://127.0.0.1:{peer.port}/")
            assert time.monotonic() - began < 1.5
        finally:
            peer.close()

    def test_at_most_the_documented_size_is_read(self):
        size = 4 * MAX_BODY
        peer = Trickle(size=size, chunk=8192, pause=0.01)
        try:
            got = AllowListedHttp(("127.0.0.1",), 5.0).get(f"http://127.0.0.1:{peer.port}/")
            assert got["status"] == 200 and len(got["body"]) == MAX_BODY
        finally:
            peer.close()
