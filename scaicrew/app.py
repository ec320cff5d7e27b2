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
import sqlalchemy.exc
from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.middleware.main import ConnexionMiddleware
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.server_error import ServerErrorMiddleware
from connexion.options import SwaggerUIOptions
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from domain.deriver import Deriver, OfflineDeriver
from domain.errors import DomainError
from domain.login import Login, LoginSettings
from domain.offline_model import OfflineModel
from domain.ports import Model
from domain.runtime import RunSettings, Runtime
from domain.stream import StreamSettings
from domain.unit_of_work import Database
from handlers.context import AllowedMethods, AppContext
from handlers.media import ContractMedia
from handlers.middleware import (
    BodyLimitMiddleware,
    BoundedRoutingMiddleware,
    ContentNegotiationMiddleware,
    RequestContextMiddleware,
)
from handlers.openapi_document import SpecDocumentMiddleware, load_spec, with_dev_headers
from handlers.operations import OperationResolver
from handlers.problems import render_exception, render_unavailable
from handlers.validation import VALIDATOR_MAP
from scaicrew.adapters.http_tools import AllowListedHttp
from scaicrew.adapters.model_deriver import ChatCompletionsDeriver
from scaicrew.adapters.oidc import OidcProvider
from scaicrew.adapters.openai_model import ChatCompletionsModel
from scaicrew.adapters.pg_listener import PgListener
from scaicrew.adapters.secret_box import FernetSecretBox
from scaicrew.adapters.session_tokens import session_tokens
from scaicrew.scheduler import SchedulerLoop
from scaicrew.settings import Settings
from scaicrew.worker import WorkerPool

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"

logger = logging.getLogger("scaicrew")


def _middlewares(context: AppContext, settings: Settings, spec: dict[str, Any]) -> list[Any]:
    stack: list[Any] = [
        functools.partial(RequestContextMiddleware, context=context),
        functools.partial(
            SpecDocumentMiddleware,
            path=SPEC_PATH,
            document=spec if settings.env == "dev" else None,
        ),
    ]
    for middleware in ConnexionMiddleware.default_middlewares:
        if middleware is ServerErrorMiddleware:
            # Connexion's default handler is broken (connexion#2059): give it ours.
            stack.append(functools.partial(ServerErrorMiddleware, handler=render_exception))
            stack.append(
                functools.partial(
                    BodyLimitMiddleware,
                    max_bytes=settings.max_body_bytes,
                    path_limits=(("/v1/webhooks/", settings.webhook_max_body_bytes),),
                )
            )
        elif middleware is RoutingMiddleware:
            stack.append(BoundedRoutingMiddleware)
        elif middleware is RequestValidationMiddleware:
            # After authentication, so a request without credentials is a 401 whatever it sends.
            stack.append(
                functools.partial(
                    ContentNegotiationMiddleware, contract=ContractMedia(spec["paths"])
                )
            )
            stack.append(middleware)
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
    spec = load_spec(SPEC_PATH)
    if settings.env == "dev":
        spec = with_dev_headers(spec)
    runtime = build_runtime(settings, database)
    runtime.signals.subscribe(runtime.stream.on_signal)
    context = AppContext(
        settings=settings,
        uow=database,
        jwks_client=jwks_client,
        allowed_methods=AllowedMethods(spec["paths"]),
        runtime=runtime,
        login=build_login(settings, database),
    )

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        workers = None
        listener = start_stream_sources(runtime, database)
        if settings.worker_threads:
            workers = WorkerPool(runtime, settings.worker_threads, settings.worker_poll_seconds)
            workers.start()
        scheduler = None
        if settings.scheduler_enabled:
            scheduler = SchedulerLoop(runtime, settings.scheduler_interval_seconds)
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                await run_in_threadpool(scheduler.stop)
            if workers is not None:
                await run_in_threadpool(workers.stop)
            await run_in_threadpool(stop_stream_sources, runtime, listener)
            database.dispose()

    app = AsyncApp(
        __name__,
        lifespan=lifespan,
        middlewares=_middlewares(context, settings, spec),
        strict_validation=True,
        validate_responses=settings.validate_responses,
        validator_map=VALIDATOR_MAP,
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/docs"),
    )
    app.add_api(
        spec,
        resolver=OperationResolver(spec),
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/docs"),
    )
    for exc_class in (Exception, HTTPException, ProblemException, DomainError):
        app.add_error_handler(exc_class, render_exception)
    # The database cannot be reached, is locked past its timeout, or the pool is exhausted.
    for db_class in (sqlalchemy.exc.OperationalError, sqlalchemy.exc.TimeoutError):
        app.add_error_handler(db_class, render_unavailable)
    app.context = context  # type: ignore[attr-defined]
    app.database = database  # type: ignore[attr-defined]
    return app


def build_login(settings: Settings, database: Database) -> Login:
    """The identity provider (when OIDC is configured) and the session-token signer."""
    provider = None
    if settings.login_configured:
        assert settings.oidc_issuer and settings.oidc_client_id and settings.oidc_redirect_uri
        provider = OidcProvider(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret.get_secret_value(),
            redirect_uri=settings.oidc_redirect_uri,
            algorithms=settings.oidc_algorithms,
            scopes=settings.oidc_scopes,
            tenant_claim=settings.oidc_tenant_claim,
            timeout=settings.oidc_timeout_seconds,
        )
    return Login(
        uow=database,
        provider=provider,
        tokens=session_tokens(settings),
        settings=LoginSettings(
            state_ttl_seconds=settings.login_state_ttl_seconds,
            session_code_ttl_seconds=settings.session_code_ttl_seconds,
            refresh_ttl_seconds=settings.refresh_ttl_seconds,
        ),
    )


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
            webhook_dedup_seconds=settings.webhook_dedup_seconds,
            webhook_refusals_logged_per_minute=settings.webhook_refusals_logged_per_minute,
        ),
        secret_box=FernetSecretBox(settings.trigger_key_materials()),
        stream_settings=StreamSettings(
            keepalive_seconds=settings.stream_keepalive_seconds,
            max_seconds=settings.stream_max_seconds,
            retention_seconds=settings.stream_retention_seconds,
            poll_seconds=settings.stream_poll_seconds,
            ticket_seconds=settings.stream_ticket_seconds,
        ),
    )


def start_stream_sources(runtime: Runtime, database: Database) -> PgListener | None:
    """Feed the live-stream hub: this process's commits always; other processes' through
    LISTEN/NOTIFY on PostgreSQL, through a poll of the event log on SQLite. The listener also
    republishes other processes' signals on this process's bus, which wakes idle workers."""
    runtime.stream.start(poll=database.is_sqlite)
    if database.is_sqlite:
        return None
    listener = PgListener(
        database.url,
        on_signals=runtime.signals.publish,
        on_range=runtime.stream.on_range,
        on_connect=runtime.stream.catch_up,
    )
    listener.start()
    return listener


def stop_stream_sources(runtime: Runtime, listener: PgListener | None) -> None:
    if listener is not None:
        listener.stop()
    runtime.stream.stop()


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
