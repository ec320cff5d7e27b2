"""A real MCP tool server for tests: the SDK's own ``MCPServer`` over streamable HTTP.

Run as ``python -m tests.support.mcp_server PORT [REQUIRED_HEADER_VALUE]``: it serves
``/mcp`` on loopback with four tools: ``lookup`` (a read), ``send`` (a write), ``slow`` (sleeps)
and ``broken`` (always fails). With a header value given, every request must carry
``X-Api-Key: <value>`` (the secret a tool server registration stores).
"""

from __future__ import annotations

import sys
import tempfile
import time
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

server = MCPServer("test-tools")


@server.tool(description="Look a word up; answers its length and the word upper-cased.")
def lookup(word: str) -> dict[str, Any]:
    return {"word": word, "upper": word.upper(), "length": len(word)}


@server.tool(description="Send a message to a recipient (an external write).")
def send(to: str, text: str) -> str:
    return f"sent {len(text)} characters to {to}"


@server.tool(description="Sleep for the given number of seconds, then answer.")
def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


@server.tool(description="Always fails.")
def broken(reason: str = "no reason") -> str:
    raise ToolError(f"the backend refused: {reason}")


@server.tool(description="Answers a large text.")
def big(size: int) -> str:
    return "x" * size


class RequireKey:
    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and Request(scope).headers.get("x-api-key") != self.key:
            await PlainTextResponse("missing or wrong X-Api-Key", status_code=401)(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)


class McpServerProcess:
    """The test server as a real child process on a free loopback port."""

    def __init__(self, key: str | None = None) -> None:
        import subprocess
        from pathlib import Path

        from tests.support.processes import ROOT, free_port

        self.port = free_port()
        self.key = key
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.log = Path(tempfile.mkstemp(prefix="mcp-server-", suffix=".log")[1])
        args = [sys.executable, "-m", "tests.support.mcp_server", str(self.port)]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                args + ([key] if key else []), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while not _listening(self.port):
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the MCP test server did not start"
            time.sleep(0.05)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def main() -> None:
    port = int(sys.argv[1])
    app: ASGIApp = server.streamable_http_app(stateless_http=True, json_response=True)
    if len(sys.argv) > 2:
        app = RequireKey(app, sys.argv[2])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
