"""No secret reaches the logs (issue 19, ADR 0041): every secret a test run creates or hands
over, checked against every log record of the run, formatted as ``LOG_FORMAT=json`` writes it.

Each pytest process (each xdist worker, or the one process without xdist) keeps:

- the secrets it sees, by watching every ``httpx.Client`` request and answer (the in-process
  test clients are ``httpx.Client``\\s too): bearer tokens, API keys and webhook signatures it
  sends, secrets in request bodies (tool-server header values, ``secret``, ``refresh_token``,
  login verifiers...), and secrets the API hands out (``secret``, ``access_token``,
  ``refresh_token``, stream ``ticket``, ``session_code``);
- every record of the server-side loggers (``scaicrew``, ``connexion``, ``uvicorn``,
  ``starlette``) at DEBUG, formatted by the real ``JsonFormatter``.

Both go to files of their own in one directory; when the run ends, the controlling process
reads them all and fails the run (exit status 1) if a secret occurs in a log line. Matching is
by token (log lines and secrets split alike on characters our generated secrets never contain,
a sentence's final dot ignored), so the check stays fast however many secrets and lines there
are; a secret glued to other letters is not found (none of our log formats does that).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from scaicrew.observability.logs import JsonFormatter

_DIR_VARIABLE = "SCAICREW_SECRET_WATCH_DIR"
#: ``SCAICREW_SECRET_WATCH=off`` switches the watch off (to measure what it costs).
_SWITCH = "SCAICREW_SECRET_WATCH"
#: The loggers a server process writes (client-side libraries are the tests' own).
_SERVER_LOGGERS = ("scaicrew", "connexion", "uvicorn", "starlette", "sse_starlette")
#: Shorter strings are test placeholders ("rotated"), not secrets, and would match by chance.
_MIN_LENGTH = 12
_SECRET_FIELDS = frozenset(
    {
        "secret",
        "access_token",
        "refresh_token",
        "ticket",
        "session_code",
        "login_verifier",
        "code_verifier",
        "client_secret",
        "password",
        "api_key",
        "token",
    }
)
_SECRET_HEADERS = ("authorization", "x-api-key", "x-scaicrew-signature", "cookie")
_MARKERS = tuple(f'"{name}"'.encode() for name in (*_SECRET_FIELDS, "headers"))
#: What separates tokens in a log line and in a secret. Our generated secrets (JWTs, API keys,
#: webhook and subscription secrets, tickets) are URL-safe base64 and dots: never split.
_SEPARATORS = re.compile(r"[\s\"'`,;:{}\[\]()<>&?#|\\=/+*!$%^@]+")


class SecretWatch:
    def __init__(self, directory: Path, name: str) -> None:
        self.secrets: set[str] = set()
        self.directory = directory
        self.name = name
        directory.mkdir(parents=True, exist_ok=True)
        self._log = (directory / f"{name}.log").open("w", encoding="utf-8")
        self.handler = logging.StreamHandler(self._log)
        self.handler.setLevel(logging.DEBUG)
        self.handler.setFormatter(JsonFormatter())
        self._levels: dict[str, int] = {}

    # -- collecting ------------------------------------------------------------------------

    def add(self, value: Any) -> None:
        """Keep ``value``'s tokens (split as log lines are: ``Bearer <token>`` keeps the
        token, ``sha256=<hex>`` the hex)."""
        if isinstance(value, str):
            for part in _SEPARATORS.split(value):
                part = part.strip(".")
                if len(part) >= _MIN_LENGTH:
                    self.secrets.add(part)

    def request(self, request: Any) -> None:
        for name in _SECRET_HEADERS:
            for value in request.headers.get_list(name):
                self.add(value)
        for name, value in request.url.params.multi_items():
            if name in _SECRET_FIELDS:
                self.add(value)
        try:
            content = request.content
        except Exception:  # a streamed body, not read: none of ours carries a secret
            return
        if content and any(marker in content for marker in _MARKERS):
            self._walk(_json(content))

    def response(self, response: Any) -> None:
        if "json" not in response.headers.get("content-type", ""):
            return
        content = response.content
        if any(marker in content for marker in _MARKERS):
            self._walk(_json(content))

    def _walk(self, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _SECRET_FIELDS:
                    self.add(value)
                elif key == "headers" and isinstance(value, dict):
                    for header_value in value.values():
                        self.add(header_value)
                self._walk(value)
        elif isinstance(node, list):
            for item in node:
                self._walk(item)

    # -- capturing -------------------------------------------------------------------------

    def start(self) -> None:
        logging.getLogger().addHandler(self.handler)
        for name in _SERVER_LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.DEBUG)

    def finish(self) -> None:
        logging.getLogger().removeHandler(self.handler)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        self._log.close()
        (self.directory / f"{self.name}.secrets").write_text(
            json.dumps(sorted(self.secrets)), encoding="utf-8"
        )


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def leaks(directory: Path) -> tuple[list[tuple[str, str]], int, int]:
    """(secret, log line) for each secret found in a log line of any process; how many
    secrets and log lines were compared."""
    secrets: set[str] = set()
    for path in directory.glob("*.secrets"):
        secrets.update(json.loads(path.read_text(encoding="utf-8")))
    found: list[tuple[str, str]] = []
    count = 0
    for path in directory.glob("*.log"):
        text = path.read_text(encoding="utf-8")
        count += text.count("\n")
        tokens = set(_SEPARATORS.split(text))
        tokens.update([token.strip(".") for token in tokens])  # "... made key <secret>."
        leaked = secrets.intersection(tokens)
        for line in text.splitlines() if leaked else ():
            found.extend((secret, line) for secret in leaked if secret in line)
    return found, len(secrets), count


_watch: SecretWatch | None = None


def _clients() -> list[type]:
    """The client classes to watch: httpx's, and httpx2's (Starlette's ``TestClient``)."""
    classes: list[type] = [httpx.Client]
    try:
        import httpx2
    except ImportError:  # pragma: no cover - installed with the test dependencies
        return classes
    return [*classes, httpx2.Client]


_SENDS = {client: client.send for client in _clients()}  # type: ignore[attr-defined]


def _watching(send: Any) -> Any:
    def watched_send(self: Any, request: Any, **kwargs: Any) -> Any:
        if _watch is not None:
            _watch.request(request)
        response = send(self, request, **kwargs)
        if _watch is not None and not kwargs.get("stream"):
            _watch.response(response)
        return response

    return watched_send


def pytest_configure(config: pytest.Config) -> None:
    global _watch
    if os.environ.get(_SWITCH, "on") == "off":
        os.environ.pop(_DIR_VARIABLE, None)
        return
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:  # the controlling process (or the only one): owns the directory
        os.environ[_DIR_VARIABLE] = tempfile.mkdtemp(prefix="secret-watch-")
        name = "main"
    else:
        name = str(workerinput["workerid"])
    if workerinput is None and _is_distributed(config):
        return  # the workers run the tests; this process only reads their files at the end
    _watch = SecretWatch(Path(os.environ[_DIR_VARIABLE]), name)
    _watch.start()
    for client, send in _SENDS.items():
        client.send = _watching(send)  # type: ignore[attr-defined]


def _is_distributed(config: pytest.Config) -> bool:
    numprocesses = getattr(config.option, "numprocesses", None)
    return bool(numprocesses) and getattr(config.option, "dist", "no") != "no"


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _watch
    if _watch is not None:
        for client, send in _SENDS.items():
            client.send = send  # type: ignore[attr-defined]
        _watch.finish()
        _watch = None
    if hasattr(session.config, "workerinput") or _DIR_VARIABLE not in os.environ:
        return  # a worker (the controlling process checks everything), or switched off
    directory = Path(os.environ[_DIR_VARIABLE])
    started = time.perf_counter()
    found, secrets, lines = leaks(directory)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"secret watch: {secrets} secrets against {lines} log lines in "
            f"{time.perf_counter() - started:.2f}s"
        )
    if found:
        if reporter is not None:
            reporter.write_sep("=", "secrets found in the logs: the run fails", red=True)
            for secret, line in found[:20]:
                reporter.write_line(f"{secret[:6]}... in: {line[:300]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        for path in directory.iterdir():
            path.unlink()
        directory.rmdir()
