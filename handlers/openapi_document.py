"""The contract as authored, served at ``/openapi.json`` and ``/openapi.yaml``.

Connexion serves the document it resolved for routing: every ``$ref`` inlined (about seven
times the size), component names gone, so a client generated from the URL gets hundreds of
anonymous models. ``SpecDocumentMiddleware`` answers those two paths first with the authored
document itself: the YAML file byte for byte, and the same document as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from starlette.types import ASGIApp, Receive, Scope, Send


class SpecLoader(yaml.SafeLoader):
    """A YAML loader that keeps timestamps (example values) as the strings they are written as."""


SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_spec(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return dict(yaml.load(handle, Loader=SpecLoader))


class SpecDocumentMiddleware:
    def __init__(self, app: ASGIApp, path: Path) -> None:
        self.app = app
        raw = path.read_bytes()
        document = yaml.load(raw, Loader=SpecLoader)
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
