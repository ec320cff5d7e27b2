"""Live-stream test helpers: an app served by uvicorn in a thread, and a stream reader.

The in-process test client buffers a whole response, so live delivery is tested against a
real server: ``served(app)`` runs uvicorn on a free loopback port in a thread, and
``StreamReader`` reads ``GET /v1/stream`` in another thread, parsing events as they arrive.
Waiting polls under a bounded deadline; the deadline only turns a hang into a readable failure.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from tests.support.processes import free_port

DEADLINE = 20.0


@dataclass
class Event:
    id: str | None
    event: str
    data: dict[str, Any]

    @property
    def seq(self) -> int:
        assert self.id is not None
        return int(self.id)


@dataclass
class Parsed:
    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None


def parse(text: str) -> Parsed:
    """Parse a whole ``text/event-stream`` body."""
    parsed = Parsed()
    feed = _Feed(parsed)
    for line in text.splitlines():
        feed.line(line)
    feed.line("")
    return parsed


class _Feed:
    def __init__(self, parsed: Parsed) -> None:
        self.parsed = parsed
        self._fields: dict[str, str] = {}
        self._data: list[str] = []

    def line(self, line: str) -> None:
        if line == "":
            if self._data:
                self.parsed.events.append(
                    Event(
                        self._fields.get("id"),
                        self._fields.get("event", "message"),
                        json.loads("\n".join(self._data)),
                    )
                )
            self._fields, self._data = {}, []
        elif line.startswith(":"):
            self.parsed.comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                self._data.append(value)
            elif name == "retry":
                self.parsed.retry = int(value)
            else:
                self._fields[name] = value


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + DEADLINE
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, "uvicorn never started"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(DEADLINE)


class StreamReader:
    """Reads one ``GET /v1/stream`` in a thread; ``opened`` is set once the headers arrived
    (the server subscribes before it answers, so anything committed after is delivered).

    Leaving it shuts the connection's socket down, which ends the reading thread at once
    (closing the client alone would leave it blocked until the server's next keep-alive).
    """

    def __init__(self, base_url: str, headers: dict[str, str], params: dict[str, Any]) -> None:
        self._url = base_url + "/v1/stream"
        self._headers = headers
        self._params = params
        self.parsed = Parsed()
        self.status: int | None = None
        self.opened = threading.Event()
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=httpx.Timeout(DEADLINE))
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._read, name="stream-reader", daemon=True)

    def __enter__(self) -> StreamReader:
        self._thread.start()
        assert self.opened.wait(DEADLINE), "the stream never answered"
        return self

    def __exit__(self, *exc: object) -> None:
        self._shut_down()
        self._client.close()
        self._thread.join(DEADLINE)
        assert not self._thread.is_alive(), "the stream reader did not stop"

    def _shut_down(self) -> None:
        response = self._response
        stream = response.extensions.get("network_stream") if response is not None else None
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed by the server
                pass

    def _read(self) -> None:
        feed = _Feed(self.parsed)
        try:
            with self._client.stream(
                "GET", self._url, headers=self._headers, params=self._params
            ) as response:
                self._response = response
                self.status = response.status_code
                self.opened.set()
                for line in response.iter_lines():
                    with self._lock:
                        feed.line(line)
        except (httpx.HTTPError, RuntimeError):  # closed by __exit__
            pass
        finally:
            self.opened.set()
            self.done.set()

    def events(self) -> list[Event]:
        with self._lock:
            return list(self.parsed.events)

    def wait_for(
        self, predicate: Callable[[list[Event]], bool], timeout: float = DEADLINE
    ) -> list[Event]:
        """Wait until ``predicate(events so far)`` holds; return the events."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            if predicate(events):
                return events
            assert not self.done.is_set() or predicate(self.events()), f"stream ended: {events}"
            assert time.monotonic() < deadline, f"timed out; events so far: {events}"
            time.sleep(0.02)


def run_statuses(events: list[Event], run_id: str) -> list[str]:
    return [
        e.data["status"] for e in events if e.event == "run.changed" and e.data["run_id"] == run_id
    ]
