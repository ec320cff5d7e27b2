"""Settings: read once from the environment, validated, grouped, with secrets hidden.

Every setting is one environment variable (its alias below); the groups (``session``,
``login``, ``runs``, ``stream``...) only organise them. Defaults live here and nowhere else:
the domain's settings objects are built from these groups (``domain_settings``), and the
README's table is generated from this model (``python -m scaicrew.settings``; a test keeps the
README in step).

``Settings(...)`` takes only the values it is given (tests build it that way); only
``Settings.from_env()`` reads the environment. Empty variables count as unset.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.functional_validators import BeforeValidator
from pydantic.main import BaseModel as _PydanticModel
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from domain.identity import LoginSettings
from domain.runs import RunSettings
from domain.stream import StreamSettings
from domain.subscriptions import SubscriptionSettings
from domain.tools import ToolServerSettings
from domain.triggers import WebhookSettings
from domain.use_cases import DomainSettings

_DEV_SECRET = "dev-only-session-secret-change-me-0123456789"
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")
_ASYMMETRIC = ("RS256", "ES256", "PS256", "EdDSA")


class SettingsError(ValueError):
    """A setting is missing, malformed or unsafe for the chosen environment."""


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


#: A comma-separated list in the environment (``RS256, ES256``), a tuple in Python.
CommaList = Annotated[tuple[str, ...], BeforeValidator(_comma_list)]


def setting(default: Any, env: str, meaning: str, shown: str | None = None, **kw: Any) -> Any:
    """A setting read from the variable ``env``; ``meaning`` and ``shown`` (how the README
    shows the default, when the value alone does not say it) document it."""
    extra = {"meaning": meaning, **({"shown": shown} if shown else {})}
    return Field(default, alias=env, json_schema_extra=extra, **kw)


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


class SessionGroup(_Group):
    secret: SecretStr = setting(
        SecretStr(""),
        "SESSION_SECRET",
        "HS256 key for session tokens, at least 32 bytes.",
        shown="none (required in `production`)",
    )
    issuer: str = setting("scaicrew", "SESSION_ISSUER", "`iss` of session tokens.")
    audience: str = setting("scaicrew-api", "SESSION_AUDIENCE", "`aud` of session tokens.")
    ttl_seconds: int = setting(
        3600,
        "SESSION_TTL_SECONDS",
        "Lifetime of session tokens (login and `scaicrew token`).",
        gt=0,
    )


class LoginGroup(_Group):
    oidc_issuer: str | None = setting(
        None,
        "OIDC_ISSUER",
        "Issuer URL of the OIDC provider; discovery is `/.well-known/openid-configuration` "
        "under it.",
        shown="unset (login answers 501)",
    )
    oidc_client_id: str | None = setting(
        None,
        "OIDC_CLIENT_ID",
        "This API's client at the provider (`client_secret_basic` at the token endpoint).",
        shown="none (required with the issuer)",
    )
    oidc_client_secret: SecretStr = setting(
        SecretStr(""),
        "OIDC_CLIENT_SECRET",
        "The client's secret at the provider.",
        shown="none (required with the issuer)",
    )
    oidc_redirect_uri: str | None = setting(
        None,
        "OIDC_REDIRECT_URI",
        "Registered redirect URI: this API's `/v1/auth/callback`.",
        shown="none (required with the issuer)",
    )
    frontend_url: str | None = setting(
        None,
        "FRONTEND_URL",
        "Where the callback redirects with `?session_code=...`.",
        shown="none (required with the issuer)",
    )
    oidc_scopes: str = setting("openid email profile", "OIDC_SCOPES", "Scopes asked for.")
    oidc_algorithms: CommaList = setting(
        ("RS256", "ES256"),
        "OIDC_ALGORITHMS",
        "Accepted ID-token algorithms (asymmetric only).",
        shown="`RS256,ES256`",
    )
    oidc_tenant_claim: str | None = setting(
        None,
        "OIDC_TENANT_CLAIM",
        "ID-token claim naming the user's tenant, for providers serving several tenants.",
        shown="unset (tenant `default`)",
    )
    oidc_timeout_seconds: float = setting(
        5.0, "OIDC_TIMEOUT_SECONDS", "Per call to the provider; a timeout answers `502`.", gt=0
    )
    state_ttl_seconds: int = setting(
        600,
        "LOGIN_STATE_TTL_SECONDS",
        "How long a login may take between `/v1/auth/login` and the callback.",
        gt=0,
    )
    session_code_ttl_seconds: int = setting(
        60, "SESSION_CODE_TTL_SECONDS", "Lifetime of the one-shot `session_code`.", gt=0
    )
    refresh_ttl_seconds: int = setting(
        2_592_000,
        "REFRESH_TTL_SECONDS",
        "Lifetime of a login's refresh tokens (fixed at login, not extended by refreshing).",
        shown="`2592000` (30 days)",
        gt=0,
    )

    @property
    def configured(self) -> bool:
        return bool(self.oidc_issuer)

    @model_validator(mode="after")
    def _complete(self) -> LoginGroup:
        required = {
            "OIDC_ISSUER": self.oidc_issuer,
            "OIDC_CLIENT_ID": self.oidc_client_id,
            "OIDC_CLIENT_SECRET": self.oidc_client_secret.get_secret_value(),
            "OIDC_REDIRECT_URI": self.oidc_redirect_uri,
            "FRONTEND_URL": self.frontend_url,
        }
        if any(required.values()):
            missing = [name for name, value in required.items() if not value]
            if missing:
                raise ValueError(f"login needs {', '.join(missing)} as well")
            urls = (self.oidc_issuer, self.oidc_redirect_uri, self.frontend_url)
            if not all(str(u).startswith(("https://", "http://")) for u in urls):
                raise ValueError("OIDC_ISSUER, OIDC_REDIRECT_URI, FRONTEND_URL must be URLs")
        bad = [a for a in self.oidc_algorithms if a not in _ASYMMETRIC]
        if bad or not self.oidc_algorithms:
            raise ValueError(f"OIDC_ALGORITHMS may only name asymmetric algorithms: {bad}")
        return self


class ServiceTokenGroup(_Group):
    jwks_url: str | None = setting(
        None,
        "SERVICE_JWKS_URL",
        "JWKS of the identity provider that signs service tokens.",
        shown="unset (service tokens refused)",
    )
    issuer: str | None = setting(
        None,
        "SERVICE_ISSUER",
        "Expected `iss` of service tokens.",
        shown="unset (required with the JWKS URL)",
    )
    audience: str = setting("scaicrew-api", "SERVICE_AUDIENCE", "Expected `aud` of service tokens.")
    algorithms: CommaList = setting(
        ("RS256", "ES256"),
        "SERVICE_ALGORITHMS",
        "Accepted service-token algorithms (asymmetric only).",
        shown="`RS256,ES256`",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ServiceTokenGroup:
        bad = [a for a in self.algorithms if a not in _ASYMMETRIC]
        if bad:
            raise ValueError(f"SERVICE_ALGORITHMS may only name asymmetric algorithms: {bad}")
        if self.jwks_url and not self.issuer:
            raise ValueError("SERVICE_ISSUER is required with SERVICE_JWKS_URL")
        return self


class AccessGroup(_Group):
    auth_cache_seconds: float = setting(
        5,
        "AUTH_CACHE_SECONDS",
        "How long a process may reuse a credential check (membership, role, API key); removal, "
        "demotion and key revocation take effect within it on every process (`0`: every "
        "request reads the database).",
        ge=0,
        le=60,
    )


def _rate(value: Any) -> Any:
    if isinstance(value, str):
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError(f"not a rate limit such as '600/minute': {value!r}") from None
    return value


#: A rate in the ``limits`` notation (``600/minute``, ``10 per second``).
Rate = Annotated[str, BeforeValidator(_rate)]


class RateLimitGroup(_Group):
    enabled: bool | None = setting(
        None,
        "RATE_LIMIT_ENABLED",
        "Apply the rate limits below (`429 RateLimited` past them).",
        shown="on in `production`, off in `dev`/`test`",
    )
    storage: str = setting(
        "memory://",
        "RATE_LIMIT_STORAGE",
        "`memory://` (per process) or `redis://host:6379/0`: one budget shared by every process.",
    )
    key_prefix: str = setting(
        "scaicrew", "RATE_LIMIT_KEY_PREFIX", "Prefix of the rate-limit keys in Redis."
    )
    credential: Rate = setting(
        "600/minute", "RATE_LIMIT_CREDENTIAL", "Requests per credential (`Authorization` value)."
    )
    ip: Rate = setting("1200/minute", "RATE_LIMIT_IP", "Requests per client IP address.")
    auth: Rate = setting(
        "30/minute", "RATE_LIMIT_AUTH", "Requests to `/v1/auth/*` per client IP address."
    )
    webhook: Rate = setting("120/minute", "RATE_LIMIT_WEBHOOK", "Webhook deliveries per trigger.")


class ModelGroup(_Group):
    kind: Literal["offline", "openai"] = setting(
        "offline",
        "MODEL",
        "`offline` (deterministic, no network) or `openai` (any OpenAI-compatible "
        "chat-completions endpoint).",
    )
    base_url: str | None = setting(
        None,
        "MODEL_BASE_URL",
        "Base URL of the endpoint; `/chat/completions` is appended.",
        shown="unset (required with `MODEL=openai`)",
    )
    api_key: SecretStr = setting(
        SecretStr(""), "MODEL_API_KEY", "Bearer key for the model endpoint.", shown="empty"
    )
    name: str = setting("gpt-4o-mini", "MODEL_NAME", "Model name sent to the endpoint.")
    timeout_seconds: float = setting(
        30.0,
        "MODEL_TIMEOUT_SECONDS",
        "Per model call; a timeout fails the run with `ModelError`.",
        gt=0,
    )

    @model_validator(mode="after")
    def _endpoint(self) -> ModelGroup:
        if self.kind == "openai" and not self.base_url:
            raise ValueError("MODEL_BASE_URL is required with MODEL=openai")
        return self


class ToolsGroup(_Group):
    http_allowlist: CommaList = setting(
        (),
        "TOOL_HTTP_ALLOWLIST",
        "Comma-separated `host` or `host:port` entries the `http_get`/`http_post` tools may reach.",
        shown="empty (no host)",
    )
    http_timeout_seconds: float = setting(
        10.0,
        "TOOL_HTTP_TIMEOUT_SECONDS",
        "Total deadline of one HTTP tool call (connect, send and read, not per read); at most "
        "64 KiB of the answer is read.",
        gt=0,
    )
    server_allowed_hosts: CommaList = setting(
        (),
        "TOOL_SERVER_ALLOWED_HOSTS",
        "Comma-separated `host` or `host:port` entries MCP tool servers may be registered on; "
        "when empty, any public host (loopback and private addresses only when listed).",
        shown="empty (any public host)",
    )
    server_timeout_seconds: float = setting(
        10.0,
        "TOOL_SERVER_TIMEOUT_SECONDS",
        "Connecting to an MCP tool server and listing its tools (registration, refresh).",
        gt=0,
    )
    call_timeout_seconds: float = setting(
        30.0,
        "TOOL_CALL_TIMEOUT_SECONDS",
        "Total deadline of one MCP tool call (connect, call, answer).",
        gt=0,
    )
    result_max_chars: int = setting(
        16000,
        "TOOL_RESULT_MAX_CHARS",
        "An MCP tool result longer than this (as JSON text) is cut to it, marked truncated.",
        ge=100,
        le=1_000_000,
    )


class RunsGroup(_Group):
    handoff_max_depth: int = setting(
        8, "HANDOFF_MAX_DEPTH", "Longest handoff chain; deeper handoffs are skipped.", ge=0
    )
    worker_threads: int = setting(
        2,
        "WORKER_THREADS",
        "In-process dispatcher threads (`0`: none; run `scaicrew worker` instead).",
        ge=0,
    )
    worker_poll_seconds: float = setting(
        0.5,
        "WORKER_POLL_SECONDS",
        "How often idle workers look for runs queued by other processes.",
        gt=0,
    )
    lease_seconds: float = setting(
        30.0,
        "RUN_LEASE_SECONDS",
        "A running run whose worker stops renewing this lease is recovered by another worker.",
        gt=0,
    )
    max_steps: int = setting(
        32, "RUN_MAX_STEPS", "Model replies and tool calls a run may take before it fails.", gt=0
    )
    max_attempts: int = setting(
        3,
        "RUN_MAX_ATTEMPTS",
        "Times a run is recovered after its worker stopped before it fails with `WorkerLost`.",
        gt=0,
    )
    max_run_seconds: float = setting(
        3600.0,
        "RUN_MAX_SECONDS",
        "A run's wall-clock deadline from its start, when its definition sets no "
        "`max_run_seconds` (time waiting for a human does not count); past it the run fails "
        "with `RunTimedOut`.",
        gt=0,
    )
    approval_timeout_seconds: float = setting(
        259200.0,
        "APPROVAL_TIMEOUT_SECONDS",
        "How long an approval waits for a decision when the definition sets no "
        "`approval_timeout_seconds`; then it expires.",
        gt=0,
    )
    sweep_seconds: float = setting(
        5.0,
        "RUN_SWEEP_SECONDS",
        "How often workers look for runs past their deadline and approvals past their expiry.",
        gt=0,
    )
    cost_units_per_1k_tokens: float = setting(
        1.0,
        "COST_UNITS_PER_1K_TOKENS",
        "Cost units written to the ledger per 1,000 model tokens.",
        ge=0,
    )


class SchedulerGroup(_Group):
    enabled: bool = setting(
        True,
        "SCHEDULER_ENABLED",
        "Run the schedule trigger scheduler in `scaicrew serve` (`scaicrew scheduler` runs it "
        "alone).",
    )
    interval_seconds: float = setting(
        5.0,
        "SCHEDULER_INTERVAL_SECONDS",
        "Seconds between scheduler ticks (how late a slot may fire).",
        gt=0,
    )


class WebhooksGroup(_Group):
    secret_key: SecretStr = setting(
        SecretStr(""),
        "TRIGGER_SECRET_KEY",
        "Key material for encrypting webhook secrets; comma-separated, the first encrypts, all "
        "decrypt (rotation).",
        shown="unset (derived from `SESSION_SECRET`)",
    )
    max_body_bytes: int = setting(
        262_144,
        "WEBHOOK_MAX_BODY_BYTES",
        "Larger webhook deliveries answer `413 PayloadTooLarge`.",
        ge=1024,
    )
    # A signature stays acceptable for 300 s either way: forgetting it sooner would let a
    # captured delivery start a second run.
    dedup_seconds: float = setting(
        86_400.0,
        "WEBHOOK_DEDUP_SECONDS",
        "How long a webhook delivery's signature, `Idempotency-Key` or body hash is remembered "
        "as a duplicate (at least 600).",
        shown="`86400`",
        ge=600,
    )
    refusals_logged_per_minute: int = setting(
        60,
        "WEBHOOK_REFUSALS_LOGGED_PER_MINUTE",
        "Refused (forged, stale, disabled) deliveries logged per trigger within a minute; more "
        "are refused without a log entry.",
        ge=0,
    )
    base_url: str | None = setting(
        None,
        "WEBHOOK_BASE_URL",
        "Public base URL of the webhook `ingress_url`s.",
        shown="unset (the request's base URL)",
    )


class StreamGroup(_Group):
    keepalive_seconds: float = setting(
        15.0,
        "STREAM_KEEPALIVE_SECONDS",
        "Interval of the keep-alive comment (`: ping`) on `GET /v1/stream`.",
        gt=0,
    )
    max_seconds: float = setting(
        900.0,
        "STREAM_MAX_SECONDS",
        "Longest life of one stream; clients reconnect with `Last-Event-ID`.",
        gt=0,
    )
    retention_seconds: float = setting(
        86_400.0,
        "STREAM_RETENTION_SECONDS",
        "How long the workspace event log keeps events (older ids answer `event: reset`).",
        shown="`86400`",
        gt=0,
    )
    poll_seconds: float = setting(
        1.0,
        "STREAM_POLL_SECONDS",
        "SQLite only: how often the event log is polled for other processes' events.",
        gt=0,
    )
    ticket_seconds: float = setting(
        60.0,
        "STREAM_TICKET_SECONDS",
        "Lifetime of a single-use stream ticket (`POST /v1/stream/tickets`).",
        gt=0,
    )


class SubscriptionsGroup(_Group):
    allowed_hosts: CommaList = setting(
        (),
        "SUBSCRIPTION_ALLOWED_HOSTS",
        "Comma-separated `host` or `host:port` entries subscriptions may deliver to although "
        "they are loopback, private or link-local (public hosts need no entry). Host names are "
        "resolved before each send: one resolving to such an address needs an entry too.",
        shown="empty (public hosts only)",
    )
    delivery_threads: int = setting(
        1,
        "SUBSCRIPTION_DELIVERY_THREADS",
        "In-process subscription delivery threads (`0`: none; run `scaicrew worker` instead).",
        ge=0,
    )
    poll_seconds: float = setting(
        1.0,
        "SUBSCRIPTION_POLL_SECONDS",
        "How often an idle delivery thread looks for new events and due retries.",
        gt=0,
    )
    timeout_seconds: float = setting(
        10.0,
        "SUBSCRIPTION_TIMEOUT_SECONDS",
        "Total deadline of one delivery POST (connect, send, read at most 64 KiB of answer).",
        gt=0,
    )
    lease_seconds: float = setting(
        60.0,
        "SUBSCRIPTION_LEASE_SECONDS",
        "A subscription whose delivery worker stops renewing this lease is taken over (a lease "
        "lasts at least twice `SUBSCRIPTION_TIMEOUT_SECONDS`).",
        gt=0,
    )
    retry_base_seconds: float = setting(
        10.0,
        "SUBSCRIPTION_RETRY_BASE_SECONDS",
        "First wait after a failed delivery; doubles per attempt (jittered, at most 1 h), "
        "retried for `SUBSCRIPTION_RETRY_WINDOW_SECONDS`.",
        gt=0,
    )
    retry_window_seconds: float = setting(
        86_400.0,
        "SUBSCRIPTION_RETRY_WINDOW_SECONDS",
        "How long a delivery is retried; a subscription whose delivery failed every attempt "
        "that long is disabled (audit entry, `subscription.disabled` event).",
        shown="`86400`",
        gt=0,
    )


class ObservabilityGroup(_Group):
    log_format: Literal["text", "json"] = setting(
        "text",
        "LOG_FORMAT",
        "`text` (readable) or `json` (one JSON object a line: request and run-transition lines "
        "carry `trace_id`, `operation_id`, `status`, `duration_ms`, `workspace_id`).",
    )
    metrics_enabled: bool = setting(
        False,
        "METRICS_ENABLED",
        "Serve Prometheus metrics at `GET /metrics` (ADR 0039).",
    )
    metrics_port: int | None = setting(
        None,
        "METRICS_PORT",
        "With `METRICS_ENABLED`: serve `/metrics` on this port only, not on the API's; "
        "`scaicrew worker` and `scaicrew scheduler` serve their metrics only there.",
        gt=0,
        lt=65536,
    )
    otlp_endpoint: str | None = setting(
        None,
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "Export OpenTelemetry traces over OTLP/HTTP here (the other standard `OTEL_*` "
        "variables, such as `OTEL_TRACES_SAMPLER`, apply; without it 1% of traces are "
        "sampled, ADR 0052); unset: no tracing (ADR 0040).",
    )


class Settings(BaseSettings):
    """Every setting of the service, grouped; see the module docstring."""

    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    env: Literal["dev", "test", "production"] = setting(
        "production",
        "ENV",
        "`dev`, `test` or `production`. Only `dev` accepts `X-Dev-*` headers and a built-in "
        "session secret.",
        shown="`production` (`make run`: `dev`)",
    )
    database_url: str = setting(
        "sqlite:///./scaicrew.db",
        "DATABASE_URL",
        "SQLAlchemy URL. PostgreSQL: `postgresql+psycopg://user@host:5432/db`.",
    )
    host: str = setting("127.0.0.1", "HOST", "Where `scaicrew serve` listens.")
    port: int = setting(8080, "PORT", "The port `scaicrew serve` listens on.", gt=0, lt=65536)
    max_body_bytes: int = setting(
        1_048_576, "MAX_BODY_BYTES", "Larger request bodies answer `413 PayloadTooLarge`.", ge=1024
    )
    max_header_bytes: int = setting(
        16_384,
        "MAX_HEADER_BYTES",
        "Request header fields larger than this in total answer `431` (`scaicrew serve` stops "
        "reading them).",
        ge=1024,
        le=1_048_576,
    )
    docs_enabled: bool | None = setting(
        None,
        "DOCS_ENABLED",
        "Serve Swagger UI at `/docs` and the contract at `/openapi.json`/`/openapi.yaml`.",
        shown="on with `ENV=dev`/`test`, off in `production`",
    )
    cors_origins: CommaList = setting(
        (),
        "CORS_ORIGINS",
        "Comma-separated origins (`https://app.example.com`) a browser front end may call "
        "from; preflights answered for them.",
        shown="none",
    )
    db_pool_size: int = setting(
        10,
        "DB_POOL_SIZE",
        "Connection pool size (and as many overflow); a SQLite file keeps at least 40.",
        gt=0,
    )
    cpu_affinity: CommaList = setting(
        (),
        "CPU_AFFINITY",
        "Comma-separated CPU numbers `scaicrew serve` and `scaicrew worker` pin themselves to "
        "(`1`: one core; README, Performance); each `serve --workers` process takes one of "
        "them. On one core a process's event loop and threads hand the GIL over without "
        "cross-core wake-ups.",
        shown="empty (not pinned)",
    )
    validate_responses: bool = setting(
        False,
        "VALIDATE_RESPONSES",
        "Let Connexion validate every response against the spec (on in tests).",
    )
    log_level: str = setting("info", "LOG_LEVEL", "Uvicorn/app log level.")
    session: SessionGroup = Field(default_factory=SessionGroup)
    service_tokens: ServiceTokenGroup = Field(default_factory=ServiceTokenGroup)
    login: LoginGroup = Field(default_factory=LoginGroup)
    access: AccessGroup = Field(default_factory=AccessGroup)
    rate_limits: RateLimitGroup = Field(default_factory=RateLimitGroup)
    model: ModelGroup = Field(default_factory=ModelGroup)
    tools: ToolsGroup = Field(default_factory=ToolsGroup)
    runs: RunsGroup = Field(default_factory=RunsGroup)
    scheduler: SchedulerGroup = Field(default_factory=SchedulerGroup)
    webhooks: WebhooksGroup = Field(default_factory=WebhooksGroup)
    stream: StreamGroup = Field(default_factory=StreamGroup)
    subscriptions: SubscriptionsGroup = Field(default_factory=SubscriptionsGroup)
    observability: ObservabilityGroup = Field(default_factory=ObservabilityGroup)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_explain(exc)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Settings(...) takes only what it is given; from_env() adds the environment.
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: the process environment).

        :raises SettingsError: a value is malformed or unsafe.
        """
        source = EnvironmentVariables(cls, os.environ if environ is None else environ)
        return cls(**source())

    @model_validator(mode="after")
    def _cpu_numbers(self) -> Settings:
        bad = [cpu for cpu in self.cpu_affinity if not cpu.isdigit()]
        if bad:
            raise ValueError(f"CPU_AFFINITY takes CPU numbers (0, 1, ...), not {bad[0]!r}")
        return self

    @model_validator(mode="after")
    def _safe_session_secret(self) -> Settings:
        secret = self.session.secret.get_secret_value()
        if not secret:
            if self.env == "production":
                raise ValueError("SESSION_SECRET is required outside ENV=dev/test")
            # A built-in secret, for dev and tests only: frozen, so set it underneath.
            session = self.session.model_copy(update={"secret": SecretStr(_DEV_SECRET)})
            object.__setattr__(self, "session", session)
        elif len(secret.encode()) < 32:
            raise ValueError("SESSION_SECRET must be at least 32 bytes (HS256 key length)")
        return self

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"

    def trigger_key_materials(self) -> list[str]:
        """Key materials for trigger secrets: TRIGGER_SECRET_KEY's comma-separated entries
        (the first encrypts), else the session secret."""
        configured = self.webhooks.secret_key.get_secret_value()
        keys = [k.strip() for k in configured.split(",") if k.strip()]
        return keys or [self.session.secret.get_secret_value()]

    def domain_settings(self) -> DomainSettings:
        """The settings the use cases read, built from these groups."""
        runs, stream, login = self.runs, self.stream, self.login
        return DomainSettings(
            tools=ToolServerSettings(
                allowed_hosts=self.tools.server_allowed_hosts,
                timeout_seconds=self.tools.server_timeout_seconds,
                call_timeout_seconds=self.tools.call_timeout_seconds,
                result_max_chars=self.tools.result_max_chars,
            ),
            runs=RunSettings(
                handoff_max_depth=runs.handoff_max_depth,
                lease_seconds=runs.lease_seconds,
                max_steps=runs.max_steps,
                max_attempts=runs.max_attempts,
                cost_units_per_1k_tokens=runs.cost_units_per_1k_tokens,
                max_run_seconds=runs.max_run_seconds,
                approval_timeout_seconds=runs.approval_timeout_seconds,
            ),
            webhooks=WebhookSettings(
                dedup_seconds=self.webhooks.dedup_seconds,
                refusals_logged_per_minute=self.webhooks.refusals_logged_per_minute,
            ),
            stream=StreamSettings(
                keepalive_seconds=stream.keepalive_seconds,
                max_seconds=stream.max_seconds,
                retention_seconds=stream.retention_seconds,
                poll_seconds=stream.poll_seconds,
                ticket_seconds=stream.ticket_seconds,
            ),
            login=LoginSettings(
                state_ttl_seconds=login.state_ttl_seconds,
                session_code_ttl_seconds=login.session_code_ttl_seconds,
                refresh_ttl_seconds=login.refresh_ttl_seconds,
            ),
            subscriptions=SubscriptionSettings(
                allowed_hosts=self.subscriptions.allowed_hosts,
                timeout_seconds=self.subscriptions.timeout_seconds,
                lease_seconds=self.subscriptions.lease_seconds,
                retry_base_seconds=self.subscriptions.retry_base_seconds,
                retry_window_seconds=self.subscriptions.retry_window_seconds,
            ),
        )

    def with_changes(self, **variables: Any) -> Settings:
        """A copy with some settings changed, named as their variables in either case
        (``settings.with_changes(run_lease_seconds=6, ENV="dev")``); validated again.

        :raises SettingsError: an unknown variable, or a value that does not validate.
        """
        data = self.model_dump()
        places = dict(_places())
        for given, value in variables.items():
            variable = given.upper()
            if variable not in places:
                raise SettingsError(f"{variable} is not a setting")
            group, name = places[variable]
            (data if group is None else data[group])[name] = value
        return Settings(**data)

    def __repr_args__(self) -> Any:
        # A database URL may carry a password: mask it like the secrets.
        for name, value in super().__repr_args__():
            if name == "database_url":
                value = _URL_PASSWORD.sub(r"\1***@", str(value))
            yield name, value


class EnvironmentVariables(PydanticBaseSettingsSource):
    """Each setting from its own variable (its alias), groups included: ``RUN_LEASE_SECONDS``
    fills ``runs.lease_seconds``. Empty variables count as unset."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        alias = field.alias or field_name.upper()
        return self._environ.get(alias) or None, alias, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            group = _group_model(field.annotation)
            if group is None:
                value, alias, _ = self.get_field_value(field, name)
                if value is not None:
                    values[alias] = value
                continue
            found = {}
            for sub_name, sub_field in group.model_fields.items():
                value, alias, _ = self.get_field_value(sub_field, sub_name)
                if value is not None:
                    found[alias] = value
            if found:
                values[name] = found
        return values


def _places() -> Iterator[tuple[str, tuple[str | None, str]]]:
    """(variable, (group field or None, field name)) for every setting."""
    for name, field in Settings.model_fields.items():
        group = _group_model(field.annotation)
        if group is None:
            yield str(field.alias), (None, name)
            continue
        for sub_name, sub_field in group.model_fields.items():
            yield str(sub_field.alias), (name, sub_name)


def _group_model(annotation: Any) -> type[_PydanticModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, _Group):
        return annotation
    return None


def _explain(exc: ValidationError) -> str:
    """One readable line per problem, naming the environment variable."""
    problems = []
    for error in exc.errors(include_url=False):
        names = [str(part) for part in error["loc"] if isinstance(part, str)]
        variable = next((n for n in reversed(names) if n.isupper()), None)
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{variable} has an invalid value: {message}" if variable else message)
    return "; ".join(problems)


def documented_settings() -> Iterator[tuple[str, str, str]]:
    """(variable, default as the README shows it, meaning) for every setting, in model order."""
    for name, field in Settings.model_fields.items():
        group = _group_model(field.annotation)
        entries = [(field, name)] if group is None else list(_fields_of(group))
        for entry, _ in entries:
            extra = entry.json_schema_extra if isinstance(entry.json_schema_extra, dict) else {}
            shown = extra.get("shown") or _shown_default(entry.default)
            yield str(entry.alias), str(shown), str(extra.get("meaning", ""))


def _fields_of(group: type[_PydanticModel]) -> Iterator[tuple[Any, str]]:
    for name, field in group.model_fields.items():
        yield field, name


def _shown_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, tuple):
        return f"`{','.join(value)}`" if value else "empty"
    return f"`{value}`"


def markdown_table() -> str:
    """The README's settings table, generated from the model."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    rows += [f"| `{var}` | {shown} | {meaning} |" for var, shown, meaning in documented_settings()]
    return "\n".join(rows)


if __name__ == "__main__":  # python -m scaicrew.settings: print the README's table
    sys.stdout.write(markdown_table() + "\n")
