"""The application context a request runs in: settings, use cases, key sources, caches.

``create_app`` builds one ``AppContext`` per app and a middleware binds it to each request, so
several apps (with different settings) can live in one process, as tests need. Contextvars
follow the request into Connexion's thread pool, where sync handlers run.
"""

from __future__ import annotations

import re
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from domain.use_cases import UseCases

if TYPE_CHECKING:
    from scaicrew.settings import Settings

_current: ContextVar[AppContext] = ContextVar("scaicrew_app_context")

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class AllowedMethods:
    """The methods openapi.yaml documents for each path, for exact ``Allow`` headers.

    Starlette's router builds a 405's ``Allow`` from the first route whose path matched, which
    with one route per operation lists only some of a path's methods.
    """

    def __init__(self, paths: dict[str, Any]) -> None:
        self._routes = [
            (
                re.compile("^" + re.sub(r"\\{[^/}]+\\}", "[^/]+", re.escape(template)) + "$"),
                ", ".join(m.upper() for m in _HTTP_METHODS if m in operations),
            )
            for template, operations in paths.items()
        ]

    def for_path(self, path: str) -> str | None:
        for pattern, methods in self._routes:
            if pattern.match(path):
                return methods
        return None


MISSING: Any = object()


class CredentialCache:
    """Answers of credential checks (membership, API key) reused for ``seconds`` (ADR 0032).

    Bounded twice: in time (``AUTH_CACHE_SECONDS``, so a removal or revocation made by another
    process takes effect within it) and in size (cleared whole when full, so made-up
    credentials cannot grow it). ``clear()`` makes this process's own changes immediate.
    """

    def __init__(self, seconds: float, max_entries: int = 10_000) -> None:
        self.seconds = seconds
        self._max = max_entries
        self._entries: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()
        #: Bumped by ``clear()``: an answer read before a clear is not stored after it.
        self.generation = 0
        #: Reads in progress, (event loop id, *key) -> the future of their answer (used by
        #: ``handlers.security`` so that concurrent misses of one key share one read).
        self.inflight: dict[tuple[Any, ...], Any] = {}

    def get(self, key: tuple[str, ...]) -> Any:
        """The cached answer, or ``MISSING``."""
        found = self._entries.get(key)
        if found is None or found[0] < time.monotonic():
            return MISSING
        return found[1]

    def put(self, key: tuple[str, ...], value: Any, generation: int) -> None:
        """Store ``value``, read when ``generation`` was current (else drop it: stale)."""
        if self.seconds <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self.seconds, value)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()


class VerifiedTokens:
    """Session tokens whose signature and claims verified, keyed by the token itself, each kept
    until it expires (ADR 0049): a token is immutable, so re-verifying it on every request
    (base64, HMAC, claim checks) learns nothing new. What can change, the membership and the
    login's revocation, is still checked on every request (through ``CredentialCache``).
    Bounded in size like ``CredentialCache`` (cleared whole when full)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max = max_entries
        self._entries: dict[str, tuple[float, Any]] = {}

    def get(self, token: str) -> Any:
        """The claims verified for ``token``, or ``MISSING`` (never seen, or expired)."""
        found = self._entries.get(token)
        if found is None:
            return MISSING
        if found[0] <= time.time():
            self._entries.pop(token, None)
            return MISSING
        return found[1]

    def put(self, token: str, claims: Any, valid_until: float) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[token] = (valid_until, claims)


@dataclass
class AppContext:
    settings: Settings
    use_cases: UseCases
    jwks_client: Any = None
    allowed_methods: AllowedMethods | None = None
    # Workspaces are never deleted, so a positive answer can be cached for the process life.
    known_workspaces: set[str] = field(default_factory=set)
    credentials: CredentialCache = field(default_factory=lambda: CredentialCache(0))
    tokens: VerifiedTokens = field(default_factory=VerifiedTokens)


def bind_context(context: AppContext) -> None:
    _current.set(context)


def app_context() -> AppContext:
    """Return the context of the app serving the current request."""
    return _current.get()
