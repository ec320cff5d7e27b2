"""The contract as authored, served at ``/openapi.json`` and ``/openapi.yaml``.

Connexion serves the document it resolved for routing: every ``$ref`` inlined (about seven
times the size), component names gone, so a client generated from the URL gets hundreds of
anonymous models. ``SpecDocumentMiddleware`` answers those two paths first with the authored
document itself: the YAML file byte for byte, and the same document as JSON.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from starlette._utils import get_route_path
from starlette.types import ASGIApp, Receive, Scope, Send

# libyaml's parser when PyYAML has it (about seven times faster on the contract: it is parsed
# at every app start, and the tests start many apps).
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SpecLoader(_SafeLoader):
    """A YAML loader that keeps timestamps (example values) as the strings they are written as."""


SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_spec(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return dict(yaml.load(handle, Loader=SpecLoader))


DEV_HEADERS_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "X-Dev-Workspace-Id",
    "description": (
        "Development only (`ENV=dev`): the workspace id, with `X-Dev-Subject` and `X-Dev-Role` "
        "(default `admin`). The workspace is created on first use."
    ),
    "x-apikeyInfoFunc": "handlers.security.verify_dev_headers",
}


def with_dev_headers(spec: dict[str, Any]) -> dict[str, Any]:
    """The contract of a dev server: the ``devHeaders`` scheme is one more way to authenticate
    wherever a credential is asked for. Other servers ignore those headers, so their contract
    does not list them (a fuzzer or a client would send them and expect them to count).
    """
    dev = copy.deepcopy(spec)
    dev["components"]["securitySchemes"]["devHeaders"] = dict(DEV_HEADERS_SCHEME)
    dev["security"] = [*dev.get("security", []), {"devHeaders": []}]
    for item in dev["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("security"):
                operation["security"] = [*operation["security"], {"devHeaders": []}]
    return dev


class SpecDocumentMiddleware:
    """Serves the file as written or, ``document`` given, that document (the dev variant)."""

    def __init__(self, app: ASGIApp, path: Path, document: dict[str, Any] | None = None) -> None:
        self.app = app
        raw = path.read_bytes()
        if document is None:
            document = yaml.load(raw, Loader=SpecLoader)
        else:
            raw = yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode("utf-8")
        self._documents = {
            "/openapi.yaml": (raw, b"application/yaml"),
            "/openapi.json": (
                json.dumps(document, ensure_ascii=False).encode("utf-8"),
                b"application/json",
            ),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._documents.get(scope.get("path", "")) if scope["type"] == "http" else None
        if found is None or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        body, media_type = found
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", media_type),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": body if scope["method"] == "GET" else b""}
        )


class DocsSwaggerUIMiddleware(SwaggerUIMiddleware):
    """Connexion's Swagger UI middleware, consulted only for the paths it serves.

    Connexion's version runs every request through a Starlette router whose routes are the
    docs pages (``/docs/...``, ``/openapi.json``) and whose default passes the request on: a
    full route match per API request for nothing. This one compares the path with the
    prefixes of its routes first, and hands every other request straight on.
    """

    _prefixes: tuple[str, ...] = ()

    def add_api(self, *args: Any, **kwargs: Any) -> None:
        super().add_api(*args, **kwargs)
        prefixes = set(self._prefixes)
        for mount in self.router.routes:  # one mount per API, holding the docs routes
            base = getattr(mount, "path", "")
            for route in getattr(mount, "routes", None) or [mount]:
                prefixes.add(base + route.path.split("{", 1)[0])
        self._prefixes = tuple(sorted(prefixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not get_route_path(scope).startswith(self._prefixes):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
