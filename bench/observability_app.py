"""One server process holding two copies of the real app over one database, "off" (the
environment's settings) and "on" (metrics on, traces exported to ``BENCH_OTLP_ENDPOINT``),
for the observability cost (issue 19).

Two processes, one per variant, differed by up to 11 % when identical (placement, memory
layout, which core the load client shares): more than the effect measured. In one process
both variants share all of that, and the bench switches between them slice by slice with
``PUT /__bench/variant`` (body ``on`` or ``off``); every other request goes to the current one.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from scaicrew.app import create_app
from scaicrew.settings import Settings

CONTROL_PATH = "/__bench/variant"


class Variants:
    """An ASGI app routing each request to the variant chosen last; lifespan to both."""

    def __init__(self, apps: dict[str, Any], current: str) -> None:
        self.apps = apps
        self.current = current

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http" and scope["path"] == CONTROL_PATH:
            await self._choose(receive, send)
        else:
            await self.apps[self.current](scope, receive, send)

    async def _choose(self, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        name = body.decode().strip()
        status = 204 if name in self.apps else 400
        if status == 204:
            self.current = name
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Start every app's lifespan, report startup once all are up; the same at shutdown."""
        inboxes = {name: asyncio.Queue[Message]() for name in self.apps}
        outboxes = {name: asyncio.Queue[Message]() for name in self.apps}
        tasks = [
            asyncio.create_task(
                app(
                    {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                    inboxes[name].get,
                    outboxes[name].put,
                )
            )
            for name, app in self.apps.items()
        ]
        for phase in ("startup", "shutdown"):
            message = await receive()
            assert message["type"] == f"lifespan.{phase}", message
            for inbox in inboxes.values():
                await inbox.put(message)
            failed = [
                answer
                for answer in [await outbox.get() for outbox in outboxes.values()]
                if answer["type"].endswith(".failed")
            ]
            if failed:
                await send({"type": f"lifespan.{phase}.failed", "message": str(failed)})
                return
            await send({"type": f"lifespan.{phase}.complete"})
        await asyncio.gather(*tasks, return_exceptions=True)


def create_both() -> Variants:
    """The factory uvicorn loads (``observability_app:create_both``)."""
    off = Settings.from_env()
    on = off.with_changes(
        metrics_enabled=True, otel_exporter_otlp_endpoint=os.environ["BENCH_OTLP_ENDPOINT"]
    )
    return Variants({"off": create_app(off), "on": create_app(on)}, current="off")
