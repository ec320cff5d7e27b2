"""Login: OIDC authorization code + PKCE, session codes, token refresh (all ``security: []``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.responses import RedirectResponse

from domain.identity import Login, SessionGrant
from domain.kernel import DomainError
from handlers._http import ok, timestamp, use_cases
from handlers.context import app_context

# Tokens and codes must not be cached by browsers or proxies (RFC 6749 section 5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _login() -> Login:
    return use_cases().login


def start_login(body: dict[str, Any]) -> Any:
    started = _login().start_login(login_challenge=body["login_challenge"])
    body = {
        "authorization_url": started.authorization_url,
        "state": started.state,
        "expires_at": timestamp(started.expires_at),
    }
    return ok(body, 200, NO_STORE)


def complete_login(
    state: str,
    code: str | None = None,
    error: str | None = None,
    **_provider_extras: Any,
) -> Any:
    session_code = _login().complete_login(code=code, state=state, error=error)
    frontend = app_context().settings.login.frontend_url or "/"
    separator = "&" if "?" in frontend else "?"
    target = f"{frontend}{separator}{urlencode({'session_code': session_code})}"
    return RedirectResponse(
        target, status_code=302, headers={**NO_STORE, "Referrer-Policy": "no-referrer"}
    )


def redeem_session_code(body: dict[str, Any]) -> Any:
    result = _login().redeem_session_code(
        session_code=body["session_code"],
        login_verifier=body["login_verifier"],
        workspace_id=body.get("workspace_id"),
    )
    if isinstance(result, SessionGrant):
        return ok(_grant(result), 200, NO_STORE)
    workspaces = [
        {"workspace_id": m.workspace_id, "name": m.workspace_name, "role": m.role.label}
        for m in result.workspaces
    ]
    return ok({"requires_selection": True, "workspaces": workspaces}, 200, NO_STORE)


# Refusals that revoke the whole login: its session tokens must stop at once here too.
_REVOKING = {"refresh-token-reused", "membership-revoked"}


def refresh_session(body: dict[str, Any]) -> Any:
    try:
        grant = _login().refresh_session(
            refresh_token=body["refresh_token"], workspace_id=body.get("workspace_id")
        )
    except DomainError as exc:
        if getattr(exc, "slug", None) in _REVOKING:
            app_context().credentials.clear()
        raise
    return ok(_grant(grant), 200, NO_STORE)


def _grant(grant: SessionGrant) -> dict[str, Any]:
    return {
        "requires_selection": False,
        "access_token": grant.access_token,
        "token_type": "Bearer",
        "expires_in": grant.expires_in,
        "refresh_token": grant.refresh_token,
        "refresh_expires_at": timestamp(grant.refresh_expires_at),
        "workspace": {
            "workspace_id": grant.workspace.workspace_id,
            "name": grant.workspace.workspace_name,
            "role": grant.workspace.role.label,
        },
    }
