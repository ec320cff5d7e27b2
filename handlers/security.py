"""Credential verification, named by ``x-bearerInfoFunc``/``x-apikeyInfoFunc`` in openapi.yaml.

Each function returns the claims dict Connexion hands to handlers as ``token_info``, returns
``NO_VALUE`` when the credential is not of its kind (so the next scheme is tried), or raises a
401 problem that says what is wrong. Algorithms are fixed per key source and never taken from
the token: HS256 for session tokens, the configured asymmetric list for service tokens.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

import jwt
from connexion.security import NO_VALUE
from starlette.concurrency import run_in_threadpool

from domain.access import KEY_PREFIX, ApiKeyRejected
from domain.kernel import DEFAULT_TENANT, ActorKind, Role
from handlers.context import MISSING, AppContext, app_context
from handlers.problems import ApiError
from handlers.tracing import note_workspace

SESSION_ALGORITHM = "HS256"
_DEV_WORKSPACE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DEV_SUBJECT = re.compile(r"^[A-Za-z0-9_.@:-]{1,255}$")
_API_KEY = re.compile(r"^sck_[A-Za-z0-9_-]{43}$")
_NOT_A_MEMBER = (
    "The credential names a workspace that does not exist or that its subject is not a member "
    "of (any more)."
)
_BAD_API_KEY = "Invalid API key: it is unknown, revoked or expired."
_LEEWAY_SECONDS = 30


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message)


_JWT_MESSAGES: list[tuple[type[Exception], str]] = [
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidAudienceError, "the token was issued for another audience"),
    (jwt.InvalidIssuerError, "the token was issued by an unexpected issuer"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim"),
    (jwt.InvalidSignatureError, "the token signature does not verify"),
    (jwt.InvalidAlgorithmError, "the token algorithm is not accepted"),
    (jwt.DecodeError, "the token is malformed"),
]


def _jwt_problem(kind: str, exc: jwt.PyJWTError) -> ApiError:
    for cls, message in _JWT_MESSAGES:
        if isinstance(exc, cls):
            if isinstance(exc, jwt.MissingRequiredClaimError):
                message = f"the token lacks the required claim '{exc.claim}'"
            return _unauthorized(f"Invalid {kind} token: {message}.")
    return _unauthorized(f"Invalid {kind} token.")


def _header(token: str) -> dict[str, Any] | None:
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None


async def _require_workspace(context: AppContext, workspace_id: str) -> None:
    note_workspace(workspace_id)
    if workspace_id in context.known_workspaces:
        return
    exists = await run_in_threadpool(context.use_cases.workspaces.workspace_exists, workspace_id)
    if not exists:
        raise _unauthorized("The credential names a workspace that does not exist.")
    context.known_workspaces.add(workspace_id)


def _role(value: object) -> Role:
    try:
        return Role.parse(str(value))
    except ValueError:
        raise _unauthorized("The credential carries an unknown role.") from None


async def _cached(context: AppContext, key: tuple[str, ...], read: Any, *args: Any) -> Any:
    """The cached answer for ``key``, else ``read(*args)`` in a thread; concurrent misses of
    one key on one event loop share a single read (ADR 0049): a thousand open streams whose
    recheck falls due together cost one database read, not a thousand."""
    cache = context.credentials
    found = cache.get(key)
    if found is not MISSING:
        return found
    loop = asyncio.get_running_loop()
    flight = (id(loop), *key)
    pending = cache.inflight.get(flight) if cache.seconds > 0 else None
    if pending is not None:
        await asyncio.wait([pending])
        if not pending.cancelled():
            return pending.result()  # the leader's answer, or its exception
        # the leader was cancelled (its client left): read for ourselves
    future: asyncio.Future[Any] = loop.create_future()
    cache.inflight[flight] = future
    try:
        generation = cache.generation
        found = await run_in_threadpool(read, *args)
        cache.put(key, found, generation)
        future.set_result(found)
        return found
    except Exception as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: no "never retrieved" warning without waiters
        raise
    finally:
        if not future.done():
            future.cancel()
        if cache.inflight.get(flight) is future:
            del cache.inflight[flight]


async def member_role(context: AppContext, workspace_id: str, subject: str) -> Role | None:
    """The subject's role in the workspace now (within ``AUTH_CACHE_SECONDS``)."""
    read = context.use_cases.access.member_role
    return await _cached(context, ("member", workspace_id, subject), read, workspace_id, subject)


async def current_role(token_info: dict[str, Any]) -> Role | None:
    """What verified claims are worth now: the role they still carry, or None if the member
    was removed or the key revoked since (stream tickets, open streams)."""
    context = app_context()
    kind, workspace_id = token_info.get("kind", "user"), token_info["workspace_id"]
    claimed = Role.parse(token_info["role"])
    if kind == ActorKind.USER.value:
        current = await member_role(context, workspace_id, token_info["sub"])
    elif kind == ActorKind.API_KEY.value:
        read = context.use_cases.access.api_key_role
        key_id = token_info["sub"]
        current = await _cached(context, ("key-id", key_id), read, workspace_id, key_id)
    else:
        return claimed
    return None if current is None else min(claimed, current)


async def verify_session_token(token: str) -> Any:
    """Verify our own HS256 session token; the subject must still be a member (ADR 0032)."""
    if token.startswith(KEY_PREFIX):
        return NO_VALUE  # an API key: the apiKeyAuth scheme decides
    context = app_context()
    verified = context.tokens.get(token)
    if verified is MISSING:
        verified = _verify_session_claims(context, token)
        if verified is NO_VALUE:
            return NO_VALUE
    workspace_id, role, subject, login_id, tenant_id = verified
    current = await member_role(context, workspace_id, subject)
    if current is None:
        raise _unauthorized(_NOT_A_MEMBER)
    if login_id is not None:
        read = context.use_cases.access.login_revoked
        if await _cached(context, ("login", login_id), read, login_id):
            raise _unauthorized("The login this session token belongs to was revoked.")
    note_workspace(workspace_id)
    return {
        "sub": subject,
        "workspace_id": workspace_id,
        # Never more than the token says, nor more than the membership now gives.
        "role": min(role, current).label,
        "kind": "user",
        "tenant_id": tenant_id,
    }


def _verify_session_claims(context: AppContext, token: str) -> Any:
    """Check a session token's signature and claims (``NO_VALUE``: not a session token); what
    they say is remembered for the token's lifetime (``VerifiedTokens``)."""
    header = _header(token)
    if header is None:
        raise _unauthorized("The bearer token is not a well-formed JWT.")
    if header.get("alg") != SESSION_ALGORITHM:
        return NO_VALUE  # not a session token: let the service-token scheme decide
    settings = context.settings
    try:
        claims = jwt.decode(
            token,
            settings.session.secret.get_secret_value(),
            algorithms=[SESSION_ALGORITHM],
            audience=settings.session.audience,
            issuer=settings.session.issuer,
            leeway=_LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise _jwt_problem("session", exc) from None
    workspace_id = claims.get("workspace_id")
    if not isinstance(workspace_id, str) or not workspace_id:
        raise _unauthorized("Invalid session token: the token lacks the claim 'workspace_id'.")
    login_id = claims.get("sid")
    verified = (
        workspace_id,
        _role(claims.get("role")),
        str(claims["sub"]),
        login_id if isinstance(login_id, str) else None,
        str(claims.get("tenant_id", DEFAULT_TENANT)),
    )
    # PyJWT accepted it up to ``exp`` plus the leeway; so does the cache, not a second longer.
    context.tokens.put(token, verified, float(claims["exp"]) + _LEEWAY_SECONDS)
    return verified


async def verify_service_token(token: str) -> Any:
    """Verify an identity-provider service token against the provider's JWKS."""
    context = app_context()
    settings = context.settings.service_tokens
    header = _header(token)
    if header is None or header.get("alg") == SESSION_ALGORITHM:
        return NO_VALUE  # malformed (reported by the session scheme) or a session token
    algorithm = header.get("alg")
    if algorithm not in settings.algorithms:
        raise _unauthorized(
            f"Invalid service token: algorithm '{str(algorithm)[:20]}' is not accepted."
        )
    if not header.get("kid"):
        raise _unauthorized("Invalid service token: the token header lacks a 'kid'.")
    if context.jwks_client is None:
        raise _unauthorized("Service tokens are not accepted: no JWKS is configured.")
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise _jwt_problem("service", exc) from None
    if unverified.get("iss") != settings.issuer:
        # Checked before any JWKS fetch so that garbage never costs a network call.
        raise _unauthorized("Invalid service token: the token was issued by an unexpected issuer.")
    try:
        signing_key = await run_in_threadpool(context.jwks_client.get_signing_key, header["kid"])
    except jwt.PyJWKClientError:
        raise _unauthorized("Invalid service token: the signing key is unknown.") from None
    try:
        claims = jwt.decode(
            token,
            # The PyJWK itself, not its raw key: PyJWT then refuses (InvalidAlgorithmError) a
            # header alg that does not match the key's type instead of crashing (TypeError).
            signing_key,
            algorithms=list(settings.algorithms),
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=_LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise _jwt_problem("service", exc) from None
    workspace_id = claims.get("workspace_id")
    if not isinstance(workspace_id, str) or not workspace_id:
        raise _unauthorized("Invalid service token: the token lacks the claim 'workspace_id'.")
    await _require_workspace(context, workspace_id)
    return {
        "sub": str(claims["sub"]),
        "workspace_id": workspace_id,
        "role": Role.ADMIN.label,
        "kind": "service",
    }


async def verify_api_key(token: str) -> Any:
    """Verify a workspace API key (``Authorization: Bearer sck_...``), ADR 0033."""
    if not token.startswith(KEY_PREFIX):
        return NO_VALUE
    if not _API_KEY.match(token):
        raise _unauthorized(_BAD_API_KEY)
    context = app_context()
    cache_key = ("key", hashlib.sha256(token.encode("ascii")).hexdigest())
    grant = context.credentials.get(cache_key)
    if grant is MISSING:
        generation = context.credentials.generation
        try:
            grant = await run_in_threadpool(context.use_cases.access.authenticate_api_key, token)
        except ApiKeyRejected:
            raise _unauthorized(_BAD_API_KEY) from None
        context.credentials.put(cache_key, grant, generation)
    note_workspace(grant.workspace_id)
    return {
        "sub": grant.key_id,
        "workspace_id": grant.workspace_id,
        "role": grant.role.label,
        "kind": ActorKind.API_KEY.value,
    }


async def verify_dev_headers(apikey: str, request: Any) -> Any:
    """Accept ``X-Dev-*`` headers, only when the server runs with ``ENV=dev``."""
    context = app_context()
    if not context.settings.is_dev:
        return NO_VALUE
    subject = request.headers.get("X-Dev-Subject") or "dev"
    if not _DEV_WORKSPACE.match(apikey):
        raise _unauthorized("X-Dev-Workspace-Id must be 1-64 letters, digits, '.', '_' or '-'.")
    if not _DEV_SUBJECT.match(subject):
        raise _unauthorized("X-Dev-Subject is not a valid subject.")
    role = _role(request.headers.get("X-Dev-Role") or Role.ADMIN.label)
    if apikey not in context.known_workspaces:
        await run_in_threadpool(context.use_cases.workspaces.ensure_member, apikey, subject, role)
        context.known_workspaces.add(apikey)
    note_workspace(apikey)
    return {"sub": subject, "workspace_id": apikey, "role": role.label, "kind": "user"}
