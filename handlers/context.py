"""The application context a request runs in: settings, use cases, key sources, caches.

``create_app`` builds one ``AppContext`` per app and a middleware binds it to each request, so
several apps (with different settings) can live in one process, as tests need. Contextvars
follow the request into Connexion's thread pool, where sync handlers run.
"""

from __future__ import annotations

import re
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


@dataclass
class AppContext:
    settings: Settings
    use_cases: UseCases
    jwks_client: Any = None
    allowed_methods: AllowedMethods | None = None
    # Workspaces are never deleted, so a positive answer can be cached for the process life.
    known_workspaces: set[str] = field(default_factory=set)


def bind_context(context: AppContext) -> None:
    _current.set(context)


def app_context() -> AppContext:
    """Return the context of the app serving the current request."""
    return _current.get()
