"""Settings read from the environment: defaults, safety checks, hidden secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from scaicrew.settings import Settings, SettingsError, documented_settings, markdown_table

GOOD_SECRET = "s" * 32


class TestDefaults:
    def test_production_is_the_default_environment_with_documented_defaults(self):
        settings = Settings.from_env({"SESSION_SECRET": GOOD_SECRET})
        assert settings.env == "production"
        assert not settings.is_dev
        assert settings.database_url == "sqlite:///./scaicrew.db"
        assert settings.port == 8080
        assert settings.max_body_bytes == 1_048_576
        assert settings.session.ttl_seconds == 3600
        assert settings.service_tokens.algorithms == ("RS256", "ES256")
        assert settings.service_tokens.jwks_url is None
        assert settings.validate_responses is False

    def test_dev_without_a_secret_gets_a_built_in_development_secret(self):
        settings = Settings.from_env({"ENV": "dev"})
        assert settings.is_dev
        assert len(settings.session.secret.get_secret_value()) >= 32

    def test_empty_values_count_as_unset(self):
        settings = Settings.from_env({"SESSION_SECRET": GOOD_SECRET, "PORT": ""})
        assert settings.port == 8080

    def test_values_are_parsed_to_their_field_types(self):
        settings = Settings.from_env(
            {
                "SESSION_SECRET": GOOD_SECRET,
                "PORT": "9000",
                "VALIDATE_RESPONSES": "yes",
                "SERVICE_ALGORITHMS": "ES256, RS256",
                "SERVICE_JWKS_URL": "https://idp.example/jwks.json",
                "SERVICE_ISSUER": "https://idp.example",
            }
        )
        assert settings.port == 9000
        assert settings.validate_responses is True
        assert settings.service_tokens.algorithms == ("ES256", "RS256")
        assert isinstance(settings.session.secret, SecretStr)

    def test_grouped_settings_keep_their_variable_names(self):
        settings = Settings.from_env(
            {
                "SESSION_SECRET": GOOD_SECRET,
                "RUN_LEASE_SECONDS": "6",
                "STREAM_MAX_SECONDS": "2.5",
                "WEBHOOK_DEDUP_SECONDS": "900",
                "TOOL_HTTP_ALLOWLIST": "a.example, b.example:8080",
            }
        )
        assert settings.runs.lease_seconds == 6.0
        assert settings.stream.max_seconds == 2.5
        assert settings.webhooks.dedup_seconds == 900.0
        assert settings.tools.http_allowlist == ("a.example", "b.example:8080")
        domain = settings.domain_settings()
        assert domain.runs.lease_seconds == 6.0
        assert domain.webhooks.dedup_seconds == 900.0

    def test_only_from_env_reads_the_process_environment(self, monkeypatch):
        monkeypatch.setenv("ENV", "test")
        monkeypatch.setenv("PORT", "9999")
        assert Settings.from_env().port == 9999
        assert Settings(env="test").port == 8080
        assert Settings.from_env({"ENV": "test"}).port == 8080


class TestRejectedSettings:
    def test_production_requires_a_session_secret(self):
        with pytest.raises(SettingsError, match="SESSION_SECRET"):
            Settings.from_env({})

    def test_a_session_secret_shorter_than_32_bytes_is_rejected(self):
        with pytest.raises(SettingsError, match="32 bytes"):
            Settings.from_env({"SESSION_SECRET": "s" * 31})

    def test_a_short_secret_is_rejected_in_dev_too(self):
        with pytest.raises(SettingsError, match="32 bytes"):
            Settings.from_env({"ENV": "dev", "SESSION_SECRET": "short"})

    def test_an_unknown_environment_is_rejected(self):
        with pytest.raises(SettingsError, match="ENV"):
            Settings.from_env({"ENV": "staging", "SESSION_SECRET": GOOD_SECRET})

    def test_a_malformed_integer_names_the_variable(self):
        with pytest.raises(SettingsError, match="PORT"):
            Settings.from_env({"SESSION_SECRET": GOOD_SECRET, "PORT": "eighty"})

    def test_a_malformed_boolean_names_the_variable(self):
        with pytest.raises(SettingsError, match="VALIDATE_RESPONSES"):
            Settings.from_env({"SESSION_SECRET": GOOD_SECRET, "VALIDATE_RESPONSES": "maybe"})

    def test_symmetric_service_algorithms_are_rejected(self):
        with pytest.raises(SettingsError, match="asymmetric"):
            Settings.from_env({"SESSION_SECRET": GOOD_SECRET, "SERVICE_ALGORITHMS": "HS256"})

    def test_a_jwks_url_without_an_issuer_is_rejected(self):
        with pytest.raises(SettingsError, match="SERVICE_ISSUER"):
            Settings.from_env(
                {"SESSION_SECRET": GOOD_SECRET, "SERVICE_JWKS_URL": "https://idp/jwks"}
            )

    def test_a_tiny_body_limit_is_rejected(self):
        with pytest.raises(SettingsError, match="MAX_BODY_BYTES"):
            Settings.from_env({"SESSION_SECRET": GOOD_SECRET, "MAX_BODY_BYTES": "10"})


class TestSecretsAreHidden:
    def test_the_session_secret_does_not_appear_in_repr_or_str(self):
        secret = "do-not-print-me-" + "z" * 32
        settings = Settings.from_env({"SESSION_SECRET": secret})
        assert secret not in repr(settings)
        assert secret not in str(settings)
        assert secret not in repr(settings.session.secret)
        assert settings.session.secret.get_secret_value() == secret

    def test_a_database_password_does_not_appear_in_repr(self):
        settings = Settings.from_env(
            {
                "SESSION_SECRET": GOOD_SECRET,
                "DATABASE_URL": "postgresql+psycopg://app:hunter2-secret@db:5432/scaicrew",
            }
        )
        assert "hunter2-secret" not in repr(settings)
        assert settings.database_url.endswith("@db:5432/scaicrew")

    def test_every_secret_field_is_hidden_from_repr(self):
        settings = Settings.from_env(
            {
                "SESSION_SECRET": "session-" + "q" * 32,
                "MODEL_API_KEY": "sk-model-key-hidden",
                "OIDC_ISSUER": "https://idp.example",
                "OIDC_CLIENT_ID": "scaicrew",
                "OIDC_CLIENT_SECRET": "oidc-client-secret-hidden",
                "OIDC_REDIRECT_URI": "https://api.example/v1/auth/callback",
                "FRONTEND_URL": "https://app.example/",
                "TRIGGER_SECRET_KEY": "trigger-secret-key-hidden",
            }
        )
        secrets = {
            "SESSION_SECRET": settings.session.secret,
            "MODEL_API_KEY": settings.model.api_key,
            "OIDC_CLIENT_SECRET": settings.login.oidc_client_secret,
            "TRIGGER_SECRET_KEY": settings.webhooks.secret_key,
        }
        for name, secret in secrets.items():
            assert isinstance(secret, SecretStr), name
            assert secret.get_secret_value() not in repr(settings), name
            assert secret.get_secret_value() not in str(settings), name


class TestLoginSettings:
    LOGIN = {
        "OIDC_ISSUER": "https://idp.example",
        "OIDC_CLIENT_ID": "scaicrew",
        "OIDC_CLIENT_SECRET": "client-secret",
        "OIDC_REDIRECT_URI": "https://api.example/v1/auth/callback",
        "FRONTEND_URL": "https://app.example/",
    }

    def test_login_is_off_without_an_issuer(self):
        assert not Settings.from_env({"ENV": "test"}).login.configured

    def test_login_settings_come_together(self):
        settings = Settings.from_env({"ENV": "test", **self.LOGIN})
        assert settings.login.configured
        assert settings.login.oidc_client_secret.get_secret_value() == "client-secret"

    @pytest.mark.parametrize("missing", sorted(LOGIN))
    def test_a_partial_login_configuration_is_refused(self, missing):
        env = {k: v for k, v in self.LOGIN.items() if k != missing}
        with pytest.raises(SettingsError, match=missing):
            Settings.from_env({"ENV": "test", **env})

    def test_oidc_algorithms_must_be_asymmetric(self):
        with pytest.raises(SettingsError, match="OIDC_ALGORITHMS"):
            Settings.from_env({"ENV": "test", "OIDC_ALGORITHMS": "HS256"})

    def test_login_ttls_must_be_positive(self):
        with pytest.raises(SettingsError, match="TTL"):
            Settings.from_env({"ENV": "test", "SESSION_CODE_TTL_SECONDS": "0"})


class TestTriggerSettings:
    def test_trigger_key_materials_default_to_the_session_secret(self):
        settings = Settings.from_env({"SESSION_SECRET": "session-" + "q" * 32})
        assert settings.trigger_key_materials() == ["session-" + "q" * 32]
        rotated = Settings.from_env(
            {"SESSION_SECRET": "session-" + "q" * 32, "TRIGGER_SECRET_KEY": "new-key, old-key"}
        )
        assert rotated.trigger_key_materials() == ["new-key", "old-key"]

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("SCHEDULER_INTERVAL_SECONDS", "0"),
            ("WEBHOOK_MAX_BODY_BYTES", "100"),
            ("WEBHOOK_DEDUP_SECONDS", "599"),  # shorter than a signature stays acceptable
        ],
    )
    def test_scheduler_and_webhook_limits_are_checked(self, name, value):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({"SESSION_SECRET": "session-" + "q" * 32, name: value})


class TestDocumentation:
    def test_every_setting_has_a_variable_a_default_and_a_meaning(self):
        rows = list(documented_settings())
        names = [name for name, _, _ in rows]
        assert len(names) == len(set(names))
        assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in names)
        assert all(shown and meaning for _, shown, meaning in rows)

    def test_the_readme_table_is_the_one_the_model_generates(self):
        readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
        assert markdown_table() in readme, "run `python -m scaicrew.settings` and paste it"
