"""Settings, read once from the environment, validated, with secrets hidden from ``repr``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

_DEV_SECRET = "dev-only-session-secret-change-me-0123456789"
ENVIRONMENTS = ("dev", "test", "production")
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


class Secret:
    """A string that does not show itself in logs or reprs."""

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SettingsError(ValueError):
    """A setting is missing, malformed or unsafe for the chosen environment."""


@dataclass(frozen=True)
class Settings:
    env: str = "production"
    database_url: str = "sqlite:///./scaicrew.db"
    host: str = "127.0.0.1"
    port: int = 8080
    session_secret: Secret = field(default_factory=lambda: Secret(""))
    session_issuer: str = "scaicrew"
    session_audience: str = "scaicrew-api"
    session_ttl_seconds: int = 3600
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: Secret = field(default_factory=lambda: Secret(""))
    oidc_redirect_uri: str | None = None
    oidc_scopes: str = "openid email profile"
    oidc_algorithms: tuple[str, ...] = ("RS256", "ES256")
    oidc_tenant_claim: str | None = None
    oidc_timeout_seconds: float = 5.0
    frontend_url: str | None = None
    login_state_ttl_seconds: int = 600
    session_code_ttl_seconds: int = 60
    refresh_ttl_seconds: int = 2_592_000
    service_jwks_url: str | None = None
    service_issuer: str | None = None
    service_audience: str = "scaicrew-api"
    service_algorithms: tuple[str, ...] = ("RS256", "ES256")
    max_body_bytes: int = 1_048_576
    db_pool_size: int = 10
    validate_responses: bool = False
    log_level: str = "info"
    model: str = "offline"
    model_base_url: str | None = None
    model_api_key: Secret = field(default_factory=lambda: Secret(""))
    model_name: str = "gpt-4o-mini"
    model_timeout_seconds: float = 30.0
    tool_http_allowlist: tuple[str, ...] = ()
    tool_http_timeout_seconds: float = 10.0
    handoff_max_depth: int = 8
    worker_threads: int = 2
    worker_poll_seconds: float = 0.5
    run_lease_seconds: float = 30.0
    cost_units_per_1k_tokens: float = 1.0
    scheduler_enabled: bool = True
    scheduler_interval_seconds: float = 5.0
    trigger_secret_key: Secret = field(default_factory=lambda: Secret(""))
    webhook_max_body_bytes: int = 262_144
    webhook_dedup_seconds: float = 86_400.0
    webhook_refusals_logged_per_minute: int = 60
    webhook_base_url: str | None = None
    stream_keepalive_seconds: float = 15.0
    stream_max_seconds: float = 900.0
    stream_retention_seconds: float = 86_400.0
    stream_poll_seconds: float = 1.0
    stream_ticket_seconds: float = 60.0

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"

    def trigger_key_materials(self) -> list[str]:
        """Key materials for trigger secrets: TRIGGER_SECRET_KEY's comma-separated entries
        (the first encrypts), else the session secret."""
        configured = self.trigger_secret_key.get_secret_value()
        keys = [k.strip() for k in configured.split(",") if k.strip()]
        return keys or [self.session_secret.get_secret_value()]

    def __repr__(self) -> str:
        # A database URL may carry a password: mask it like the session secret.
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["database_url"] = _URL_PASSWORD.sub(r"\1***@", self.database_url)
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def __post_init__(self) -> None:
        if self.env not in ENVIRONMENTS:
            raise SettingsError(f"ENV must be one of {', '.join(ENVIRONMENTS)}, not {self.env!r}")
        secret = self.session_secret.get_secret_value()
        if not secret:
            if self.env == "production":
                raise SettingsError("SESSION_SECRET is required outside ENV=dev/test")
            object.__setattr__(self, "session_secret", Secret(_DEV_SECRET))
        elif len(secret.encode()) < 32:
            raise SettingsError("SESSION_SECRET must be at least 32 bytes (HS256 key length)")
        bad = [a for a in self.service_algorithms if a not in ("RS256", "ES256", "PS256", "EdDSA")]
        if bad:
            raise SettingsError(f"SERVICE_ALGORITHMS may only name asymmetric algorithms: {bad}")
        if self.service_jwks_url and not self.service_issuer:
            raise SettingsError("SERVICE_ISSUER is required with SERVICE_JWKS_URL")
        self._check_login()
        if self.max_body_bytes < 1024:
            raise SettingsError("MAX_BODY_BYTES must be at least 1024")
        if self.model not in ("offline", "openai"):
            raise SettingsError("MODEL must be 'offline' or 'openai'")
        if self.model == "openai" and not self.model_base_url:
            raise SettingsError("MODEL_BASE_URL is required with MODEL=openai")
        if self.worker_threads < 0 or self.handoff_max_depth < 0:
            raise SettingsError("WORKER_THREADS and HANDOFF_MAX_DEPTH must not be negative")
        if self.run_lease_seconds <= 0 or self.worker_poll_seconds <= 0:
            raise SettingsError("RUN_LEASE_SECONDS and WORKER_POLL_SECONDS must be positive")
        if self.scheduler_interval_seconds <= 0:
            raise SettingsError("SCHEDULER_INTERVAL_SECONDS must be positive")
        if self.webhook_max_body_bytes < 1024:
            raise SettingsError("WEBHOOK_MAX_BODY_BYTES must be at least 1024")
        if self.webhook_dedup_seconds < 600:
            # A signature stays acceptable for 300 s either way: forgetting it sooner would
            # let a captured delivery start a second run.
            raise SettingsError("WEBHOOK_DEDUP_SECONDS must be at least 600")
        if self.webhook_refusals_logged_per_minute < 0:
            raise SettingsError("WEBHOOK_REFUSALS_LOGGED_PER_MINUTE must not be negative")
        stream = (
            self.stream_keepalive_seconds,
            self.stream_max_seconds,
            self.stream_retention_seconds,
            self.stream_poll_seconds,
            self.stream_ticket_seconds,
        )
        if min(stream) <= 0:
            raise SettingsError("STREAM_*_SECONDS settings must be positive")

    @property
    def login_configured(self) -> bool:
        return bool(self.oidc_issuer)

    def _check_login(self) -> None:
        login = {
            "OIDC_ISSUER": self.oidc_issuer,
            "OIDC_CLIENT_ID": self.oidc_client_id,
            "OIDC_CLIENT_SECRET": self.oidc_client_secret.get_secret_value(),
            "OIDC_REDIRECT_URI": self.oidc_redirect_uri,
            "FRONTEND_URL": self.frontend_url,
        }
        if any(login.values()):
            missing = [name for name, value in login.items() if not value]
            if missing:
                raise SettingsError(f"login needs {', '.join(missing)} as well")
            urls = (self.oidc_issuer, self.oidc_redirect_uri, self.frontend_url)
            if not all(str(u).startswith(("https://", "http://")) for u in urls):
                raise SettingsError("OIDC_ISSUER, OIDC_REDIRECT_URI, FRONTEND_URL must be URLs")
        bad = [a for a in self.oidc_algorithms if a not in ("RS256", "ES256", "PS256", "EdDSA")]
        if bad or not self.oidc_algorithms:
            raise SettingsError(f"OIDC_ALGORITHMS may only name asymmetric algorithms: {bad}")
        ttls = (
            self.login_state_ttl_seconds,
            self.session_code_ttl_seconds,
            self.refresh_ttl_seconds,
            self.oidc_timeout_seconds,
        )
        if min(ttls) <= 0:
            raise SettingsError("login TTLs and OIDC_TIMEOUT_SECONDS must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: the process environment).

        :raises SettingsError: a value is malformed or unsafe.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        return cls(**values)  # type: ignore[arg-type]


def _parse(name: str, kind: object, raw: str) -> object:
    kind = str(kind)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes")
        if kind == "Secret":
            return Secret(raw)
        if kind.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError:
        raise SettingsError(f"{name.upper()} has an invalid value") from None
    return raw
