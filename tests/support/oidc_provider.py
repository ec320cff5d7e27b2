"""A real OpenID Connect provider on loopback: ``oidc-provider-mock`` in a child process.

It is never imported here (importing it emits an AuthlibDeprecationWarning, and the tests run
with ``-W error``): ``python -m oidc_provider_mock`` runs it, and this module speaks HTTP to it.
Its authorize endpoint shows a form; POSTing the form with a ``sub`` logs that subject in and
redirects (302) to the client's redirect URI with ``code`` and ``state``. ``PUT /users/{sub}``
sets a user's claims.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from scaicrew.settings import Settings
from tests.support.processes import free_port


@dataclass
class OidcProvider:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_user(self, subject: str, claims: dict[str, Any]) -> None:
        r = httpx.put(f"{self.issuer}/users/{subject}", json=claims, timeout=5)
        assert r.status_code == 204, r.text

    def authorize(self, authorization_url: str, subject: str) -> httpx.URL:
        """Log ``subject`` in at the provider (as the browser would); the redirect target."""
        r = httpx.post(authorization_url, data={"sub": subject}, timeout=10)
        assert r.status_code == 302, r.text
        return httpx.URL(r.headers["location"])

    def deny(self, authorization_url: str) -> httpx.URL:
        r = httpx.post(authorization_url, data={"action": "deny"}, timeout=10)
        assert r.status_code == 302, r.text
        return httpx.URL(r.headers["location"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_oidc_provider(log: Path, port: int | None = None) -> OidcProvider:
    """Start the provider on a free loopback port; return once discovery answers."""
    port = port or free_port()
    with log.open("wb") as handle:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "oidc_provider_mock",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
    provider = OidcProvider(process, port, log)
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, f"OIDC provider exited:\n{log.read_text(errors='replace')}"
        try:
            url = f"{provider.issuer}/.well-known/openid-configuration"
            if httpx.get(url, timeout=1).status_code == 200:
                return provider
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the OIDC provider never answered discovery"
        time.sleep(0.1)


def login_settings(settings: Settings, provider: OidcProvider, **overrides: Any) -> Settings:
    """``settings`` with login configured against ``provider``."""
    return settings.with_changes(
        oidc_issuer=provider.issuer,
        oidc_client_id="scaicrew-test",
        oidc_client_secret=SecretStr("test-client-secret"),
        oidc_redirect_uri="http://127.0.0.1:9/v1/auth/callback",
        frontend_url="http://127.0.0.1:9/app",
        **overrides,
    )
