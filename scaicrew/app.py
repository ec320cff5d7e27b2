"""Composition root: build the Connexion app from settings.

``create_app(settings)`` wires the contract (openapi.yaml), the handlers, the database and the
error rendering together. ``app`` at module level is for ``uvicorn scaicrew.app:app`` and reads
settings from the environment when first served.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt
from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.middleware.main import ConnexionMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.server_error import ServerErrorMiddleware
from connexion.options import SwaggerUIOptions
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from domain.deriver import Deriver, OfflineDeriver
from domain.errors import DomainError
from domain.offline_model import OfflineModel
from domain.ports import Model
from domain.runtime import RunSettings, Runtime
from domain.unit_of_work import Database
from handlers.context import AllowedMethods, AppContext
from handlers.middleware import (
    BodyLimitMiddleware,
    BoundedRoutingMiddleware,
    RequestContextMiddleware,
)
from handlers.problems import render_exception
from handlers.validation import VALIDATOR_MAP
from scaicrew.adapters.http_tools import AllowListedHttp
from scaicrew.adapters.model_deriver import ChatCompletionsDeriver
from scaicrew.adapters.openai_model import ChatCompletionsModel
from scaicrew.settings import Settings
from scaicrew.worker import WorkerPool

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"

logger = logging.getLogger("scaicrew")


def _middlewares(context: AppContext, settings: Settings) -> list[Any]:
    stack: list[Any] = [functools.partial(RequestContextMiddleware, context=context)]
    for middleware in ConnexionMiddleware.default_middlewares:
        if middleware is ServerErrorMiddleware:
            # Connexion's default handler is broken (connexion#2059): give it ours.
            stack.append(functools.partial(ServerErrorMiddleware, handler=render_exception))
            stack.append(functools.partial(BodyLimitMiddleware, max_bytes=settings.max_body_bytes))
        elif middleware is RoutingMiddleware:
            stack.append(BoundedRoutingMiddleware)
        else:
            stack.append(middleware)
    return stack


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> AsyncApp:
    """Build the ASGI app for ``settings`` (default: from the environment)."""
    settings = settings or Settings.from_env()
    database = database or Database(settings.database_url, pool_size=settings.db_pool_size)
    jwks_client = None
    if settings.service_jwks_url:
        jwks_client = jwt.PyJWKClient(
            settings.service_jwks_url,
            cache_jwk_set=True,
            lifespan=300,
            cache_keys=True,
            timeout=5,
        )
    runtime = build_runtime(settings, database)
    context = AppContext(
        settings=settings,
        uow=database,
        jwks_client=jwks_client,
        allowed_methods=AllowedMethods.from_spec_file(SPEC_PATH),
        runtime=runtime,
    )

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        workers = None
        if settings.worker_threads:
            workers = WorkerPool(runtime, settings.worker_threads, settings.worker_poll_seconds)
            workers.start()
        try:
            yield
        finally:
            if workers is not None:
                await run_in_threadpool(workers.stop)
            database.dispose()

    app = AsyncApp(
        __name__,
        lifespan=lifespan,
        middlewares=_middlewares(context, settings),
        strict_validation=True,
        validate_responses=settings.validate_responses,
        validator_map=VALIDATOR_MAP,
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/docs"),
    )
    app.add_api(SPEC_PATH, swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/docs"))
    for exc_class in (Exception, HTTPException, ProblemException, DomainError):
        app.add_error_handler(exc_class, render_exception)
    app.context = context  # type: ignore[attr-defined]
    app.database = database  # type: ignore[attr-defined]
    return app


def build_runtime(settings: Settings, database: Database) -> Runtime:
    """The model, tools and run settings the engine and the run use cases work with."""
    model: Model = OfflineModel()
    deriver: Deriver = OfflineDeriver()
    if settings.model == "openai":
        assert settings.model_base_url is not None
        endpoint = (
            settings.model_base_url,
            settings.model_api_key.get_secret_value(),
            settings.model_name,
            settings.model_timeout_seconds,
        )
        model = ChatCompletionsModel(*endpoint)
        deriver = ChatCompletionsDeriver(*endpoint)
    return Runtime(
        uow=database,
        http=AllowListedHttp(settings.tool_http_allowlist, settings.tool_http_timeout_seconds),
        model=model,
        deriver=deriver,
        settings=RunSettings(
            handoff_max_depth=settings.handoff_max_depth,
            lease_seconds=settings.run_lease_seconds,
            cost_units_per_1k_tokens=settings.cost_units_per_1k_tokens,
        ),
    )


class _LazyApp:
    """``uvicorn scaicrew.app:app``: build the real app from the environment on first use."""

    def __init__(self) -> None:
        self._app: AsyncApp | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = create_app()
        await self._app(scope, receive, send)


app = _LazyApp()

__all__ = ["SPEC_PATH", "app", "create_app"]
