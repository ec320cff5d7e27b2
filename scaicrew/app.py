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
from connexion.middleware.security import SecurityMiddleware
from connexion.middleware.server_error import ServerErrorMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from domain.authoring import Deriver, OfflineDeriver
from domain.database import Database
from domain.kernel import Clock, DomainError
from domain.runs import LanguageModel, OfflineLanguageModel
from domain.tools import HttpPort, ToolServerPort
from domain.use_cases import Ports, UseCases
from handlers.bearer_security import BearerSecurityMiddleware
from handlers.context import AllowedMethods, AppContext, CredentialCache
from handlers.json_body import FastJsonifier
from handlers.media import ContractMedia
from handlers.middleware import (
    BodyLimitMiddleware,
    BoundedRoutingMiddleware,
    ContentNegotiationMiddleware,
    HeaderLimitMiddleware,
    ProblemCorsMiddleware,
    RequestContextMiddleware,
)
from handlers.openapi_document import (
    DocsSwaggerUIMiddleware,
    SpecDocumentMiddleware,
    load_spec,
    with_dev_headers,
)
from handlers.operations import OperationResolver, handler_paths
from handlers.prepared import (
    SECURITY_MAP,
    PreparedRequestValidationMiddleware,
    PreparedURIParser,
    use_prepared_operations,
)
from handlers.problems import render_exception, render_unavailable
from handlers.rate_limits import RateLimitMiddleware, RateRules
from handlers.validation import VALIDATOR_MAP
from scaicrew.adapters.delivery_http import HttpDelivery
from scaicrew.adapters.http_tools import AllowListedHttp
from scaicrew.adapters.mcp_client import McpToolServers
from scaicrew.adapters.model_deriver import ChatCompletionsDeriver
from scaicrew.adapters.oidc import OidcProvider
from scaicrew.adapters.openai_model import ChatCompletionsModel
from scaicrew.adapters.pg_listener import PgListener
from scaicrew.adapters.secret_box import FernetSecretBox
from scaicrew.adapters.session_tokens import session_tokens
from scaicrew.migrate import head_revision
from scaicrew.observability import Observability, ObservabilityMiddleware
from scaicrew.observability.ports import MeasuredHttp, MeasuredModel, MeasuredToolServers
from scaicrew.scheduler import SchedulerLoop
from scaicrew.settings import Settings
from scaicrew.worker import DeliveryPool, WorkerPool

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"

logger = logging.getLogger("scaicrew")


def _middlewares(
    context: AppContext, settings: Settings, spec: dict[str, Any], observability: Observability
) -> list[Any]:
    stack: list[Any] = [
        functools.partial(
            ObservabilityMiddleware,
            observability=observability,
            operation_ids={path: op for op, path in handler_paths(spec).items()},
        ),
        functools.partial(RequestContextMiddleware, context=context),
    ]
    if settings.cors_origins:
        stack.append(
            functools.partial(
                ProblemCorsMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
                allow_headers=CORS_REQUEST_HEADERS,
                expose_headers=CORS_RESPONSE_HEADERS,
                max_age=600,
            )
        )
    stack.append(functools.partial(HeaderLimitMiddleware, max_bytes=settings.max_header_bytes))
    limits = settings.rate_limits
    if limits.enabled if limits.enabled is not None else settings.env == "production":
        rules = RateRules(limits.credential, limits.ip, limits.auth, limits.webhook)
        stack.append(
            functools.partial(
                RateLimitMiddleware,
                rules=rules,
                storage=limits.storage,
                key_prefix=limits.key_prefix,
            )
        )
    if docs_enabled(settings):
        stack.append(
            functools.partial(
                SpecDocumentMiddleware,
                path=SPEC_PATH,
                document=spec if settings.env == "dev" else None,
            )
        )
    for middleware in ConnexionMiddleware.default_middlewares:
        if middleware is ServerErrorMiddleware:
            # Connexion's default handler is broken (connexion#2059): give it ours.
            stack.append(functools.partial(ServerErrorMiddleware, handler=render_exception))
            stack.append(
                functools.partial(
                    BodyLimitMiddleware,
                    max_bytes=settings.max_body_bytes,
                    path_limits=(("/v1/webhooks/", settings.webhooks.max_body_bytes),),
                )
            )
        elif middleware is RoutingMiddleware:
            stack.append(BoundedRoutingMiddleware)
        elif middleware is SecurityMiddleware:
            stack.append(BearerSecurityMiddleware)
        elif middleware is SwaggerUIMiddleware:
            stack.append(DocsSwaggerUIMiddleware)
        elif middleware is RequestValidationMiddleware:
            # After authentication, so a request without credentials is a 401 whatever it sends.
            stack.append(
                functools.partial(
                    ContentNegotiationMiddleware,
                    contract=ContractMedia(spec),
                )
            )
            stack.append(PreparedRequestValidationMiddleware)
        else:
            stack.append(middleware)
    return stack


# What a browser front end on another origin may send and read (CORS_ORIGINS).
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-Match",
    "If-None-Match",
    "Last-Event-ID",
    "X-Request-ID",
]
CORS_RESPONSE_HEADERS = [
    "ETag",
    "Location",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-Request-ID",
]


def docs_enabled(settings: Settings) -> bool:
    """``DOCS_ENABLED``, or by default: on in dev and test, off in production."""
    if settings.docs_enabled is not None:
        return settings.docs_enabled
    return settings.env != "production"


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    clock: Clock | None = None,
    observability: Observability | None = None,
) -> AsyncApp:
    """Build the ASGI app for ``settings`` (default: from the environment); ``observability``
    (default: what the settings turn on) measures and traces it."""
    settings = settings or Settings.from_env()
    database = database or Database(
        settings.database_url, pool_size=settings.db_pool_size, clock=clock
    )
    observability = observability or Observability.from_settings(settings)
    jwks_client = None
    if settings.service_tokens.jwks_url:
        jwks_client = jwt.PyJWKClient(
            settings.service_tokens.jwks_url,
            cache_jwk_set=True,
            lifespan=300,
            cache_keys=True,
            timeout=5,
        )
    spec = load_spec(SPEC_PATH)
    if settings.env == "dev":
        spec = with_dev_headers(spec)
    use_cases = build_use_cases(settings, database, clock, observability)
    use_cases.signals.subscribe(use_cases.hub.on_signal)
    if observability.metrics is not None:
        observability.metrics.watch(database, use_cases.hub.subscriber_count)
    context = AppContext(
        settings=settings,
        use_cases=use_cases,
        jwks_client=jwks_client,
        allowed_methods=AllowedMethods(spec["paths"]),
        credentials=CredentialCache(settings.access.auth_cache_seconds),
    )

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        workers = None
        metrics_server = None
        if settings.observability.metrics_port:
            metrics_server = observability.serve_metrics_port(settings.observability.metrics_port)
        listener = start_stream_sources(use_cases)
        if settings.runs.worker_threads:
            workers = WorkerPool(
                use_cases,
                settings.runs.worker_threads,
                settings.runs.worker_poll_seconds,
                settings.runs.sweep_seconds,
            )
            workers.start()
        deliveries = None
        if settings.subscriptions.delivery_threads:
            deliveries = DeliveryPool(
                use_cases,
                settings.subscriptions.delivery_threads,
                settings.subscriptions.poll_seconds,
            )
            deliveries.start()
        scheduler = None
        if settings.scheduler.enabled:
            scheduler = SchedulerLoop(
                use_cases.firing, settings.scheduler.interval_seconds, observability.tracing
            )
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                await run_in_threadpool(scheduler.stop)
            if workers is not None:
                await run_in_threadpool(workers.stop)
            if deliveries is not None:
                await run_in_threadpool(deliveries.stop)
            await run_in_threadpool(stop_stream_sources, use_cases, listener)
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
            observability.shutdown()
            database.dispose()

    docs = SwaggerUIOptions(
        swagger_ui_path="/docs",
        swagger_ui=docs_enabled(settings),
        serve_spec=docs_enabled(settings),
    )
    app = AsyncApp(
        __name__,
        lifespan=lifespan,
        middlewares=_middlewares(context, settings, spec, observability),
        strict_validation=True,
        validate_responses=settings.validate_responses,
        validator_map=VALIDATOR_MAP,
        swagger_ui_options=docs,
        jsonifier=FastJsonifier(),
        security_map=SECURITY_MAP,
        uri_parser_class=PreparedURIParser,
    )
    use_prepared_operations(app)
    app.add_api(spec, resolver=OperationResolver(spec), swagger_ui_options=docs)
    for exc_class in (Exception, HTTPException, ProblemException, DomainError):
        app.add_error_handler(exc_class, render_exception)
    # The database cannot be reached, is locked past its timeout, or the pool is exhausted.
    for db_class in (
        sqlalchemy.exc.OperationalError,
        sqlalchemy.exc.InterfaceError,  # a connection that died under a transaction
        sqlalchemy.exc.TimeoutError,
    ):
        app.add_error_handler(db_class, render_unavailable)
    app.context = context  # type: ignore[attr-defined]
    app.database = database  # type: ignore[attr-defined]
    return app


def build_use_cases(
    settings: Settings,
    database: Database,
    clock: Clock | None = None,
    observability: Observability | None = None,
) -> UseCases:
    """Every capability's use cases over ``database``, with the adapters the settings name;
    ``observability`` measures and traces the model and tool calls, and the runs."""
    model: LanguageModel = OfflineLanguageModel()
    deriver: Deriver = OfflineDeriver()
    if settings.model.kind == "openai":
        assert settings.model.base_url is not None
        endpoint = (
            settings.model.base_url,
            settings.model.api_key.get_secret_value(),
            settings.model.name,
            settings.model.timeout_seconds,
        )
        model = ChatCompletionsModel(*endpoint)
        deriver = ChatCompletionsDeriver(*endpoint)
    http: HttpPort = AllowListedHttp(
        settings.tools.http_allowlist, settings.tools.http_timeout_seconds
    )
    tool_servers: ToolServerPort = McpToolServers(settings.tools.result_max_chars)
    metrics = tracing = None
    if observability is not None:
        metrics, tracing = observability.metrics, observability.tracing
    if metrics is not None or tracing is not None:
        model = MeasuredModel(model, metrics, tracing)
        http = MeasuredHttp(http, metrics, tracing)
        tool_servers = MeasuredToolServers(tool_servers, metrics, tracing)
    if tracing is not None:
        tracing.instrument_database(database)
    ports = Ports(
        http=http,
        model=model,
        deriver=deriver,
        secret_box=FernetSecretBox(settings.trigger_key_materials()),
        session_tokens=session_tokens(settings),
        tool_servers=tool_servers,
        identity_provider=_identity_provider(settings),
        delivery=HttpDelivery(tuple(settings.subscriptions.allowed_hosts)),
    )
    use_cases = UseCases(
        database, ports, settings.domain_settings(), clock, schema_head=head_revision()
    )
    if observability is not None:
        use_cases.signals.subscribe(observability.on_signal)
    return use_cases


def _identity_provider(settings: Settings) -> OidcProvider | None:
    login = settings.login
    if not login.configured:
        return None
    assert login.oidc_issuer and login.oidc_client_id and login.oidc_redirect_uri
    return OidcProvider(
        issuer=login.oidc_issuer,
        client_id=login.oidc_client_id,
        client_secret=login.oidc_client_secret.get_secret_value(),
        redirect_uri=login.oidc_redirect_uri,
        algorithms=login.oidc_algorithms,
        scopes=login.oidc_scopes,
        tenant_claim=login.oidc_tenant_claim,
        timeout=login.oidc_timeout_seconds,
    )


def start_stream_sources(use_cases: UseCases) -> PgListener | None:
    """Feed the live-stream hub: this process's commits always; other processes' through
    LISTEN/NOTIFY on PostgreSQL, through a poll of the event log on SQLite. The listener also
    republishes other processes' signals on this process's bus, which wakes idle workers."""
    database = use_cases.database
    use_cases.hub.start(poll=database.is_sqlite)
    if database.is_sqlite:
        return None
    listener = PgListener(
        database.url,
        on_signals=use_cases.signals.publish,
        on_range=use_cases.hub.on_range,
        on_connect=use_cases.hub.catch_up,
    )
    listener.start()
    return listener


def stop_stream_sources(use_cases: UseCases, listener: PgListener | None) -> None:
    if listener is not None:
        listener.stop()
    use_cases.hub.stop()


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
