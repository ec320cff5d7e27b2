"""``scaicrew serve``'s HTTP protocol: uvicorn's httptools protocol with a bound on the header
bytes it reads (``MAX_HEADER_BYTES``).

httptools buffers a header field whole before it reports it, so an 8 MB ``Authorization``
header used to be read into memory and answered 401. Here the bytes of a request's head are
counted as they arrive; past the limit the server answers ``431`` problem+json and closes the
connection without reading further. (``HeaderLimitMiddleware`` checks the same limit for any
other ASGI server.)
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from handlers.middleware import header_limit_message
from handlers.problems import PROBLEM_JSON, problem_bytes
from handlers.tracing import start_trace

_HEAD_END = b"\r\n\r\n"


def bounded_protocol(max_header_bytes: int) -> type[HttpToolsProtocol]:
    """The protocol class for ``uvicorn.run(http=...)``."""

    class BoundedHeadersProtocol(_BoundedHeaders):
        limit = max_header_bytes

    return BoundedHeadersProtocol


class _BoundedHeaders(HttpToolsProtocol):
    limit = 16_384

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            end = data.find(_HEAD_END)
            self._head_bytes += len(data) if end < 0 else end + len(_HEAD_END)
            if self._head_bytes > self.limit:
                self._refuse()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0

    def _refuse(self) -> None:
        trace_id = start_trace(None)
        body = problem_bytes(431, header_limit_message(self.limit))
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            + b"content-type: "
            + PROBLEM_JSON.encode()
            + b"\r\n"
            + b"content-length: "
            + str(len(body)).encode()
            + b"\r\n"
            + b"x-request-id: "
            + trace_id.encode()
            + b"\r\n"
            + b"connection: close\r\n\r\n"
        )
        self.transport.write(head + body)
        self.transport.close()
        self._in_head = False


class WorkerProtocol(_BoundedHeaders):
    """The protocol of ``scaicrew serve --workers N`` (named by import string, as uvicorn's
    worker processes load it): each process sets ``limit`` from its settings at start-up."""
