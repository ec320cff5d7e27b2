"""Every error the app can emit, rendered as RFC 9457 problem+json with the ScaiCrew envelope.

One table maps domain errors to (status, code, type, title); one renderer builds the body for
domain errors, Connexion/Starlette HTTP errors and unexpected exceptions alike. Unexpected
exceptions are logged with their traceback and answer a generic 500: no exception text or stack
ever reaches a client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from domain import identity, kernel, tools, triggers
from domain.authoring import ModelUnusable
from handlers.context import app_context
from handlers.tracing import current_trace_id

logger = logging.getLogger("scaicrew.errors")

PROBLEM_JSON = "application/problem+json"
WWW_AUTHENTICATE = 'Bearer realm="scaicrew"'

_STATUS_CODES: dict[int, tuple[str, str, str]] = {
    # status: (code, type slug, title)
    400: ("ValidationError", "validation-error", "Bad Request"),
    401: ("Unauthorized", "unauthorized", "Unauthorized"),
    403: ("Forbidden", "forbidden", "Forbidden"),
    404: ("NotFound", "not-found", "Not Found"),
    405: ("MethodNotAllowed", "method-not-allowed", "Method Not Allowed"),
    406: ("NotAcceptable", "not-acceptable", "Not Acceptable"),
    409: ("Conflict", "conflict", "Conflict"),
    412: ("PreconditionFailed", "precondition-failed", "Precondition Failed"),
    413: ("PayloadTooLarge", "payload-too-large", "Payload Too Large"),
    415: ("UnsupportedMediaType", "unsupported-media-type", "Unsupported Media Type"),
    429: ("RateLimited", "rate-limited", "Too Many Requests"),
    431: (
        "RequestHeaderFieldsTooLarge",
        "request-header-fields-too-large",
        "Request Header Fields Too Large",
    ),
    500: ("InternalError", "internal-error", "Internal Server Error"),
    501: ("NotImplemented", "not-implemented", "Not Implemented"),
    502: ("BadGateway", "bad-gateway", "Bad Gateway"),
    503: ("ServiceUnavailable", "service-unavailable", "Service Unavailable"),
}

# How long a client should wait after a 503 before it tries again.
RETRY_AFTER_SECONDS = 5

# The one mapping from domain errors to HTTP; the most specific class wins (MRO walk).
DOMAIN_ERRORS: dict[type[kernel.DomainError], int] = {
    kernel.NotFound: 404,
    kernel.PermissionDenied: 403,
    kernel.Conflict: 409,
    kernel.PreconditionFailed: 412,
    kernel.CredentialRejected: 401,
    kernel.InvalidField: 400,
    ModelUnusable: 502,
    identity.IdentityProviderUnavailable: 502,
    tools.ToolServerUnavailable: 502,
    identity.LoginNotConfigured: 501,
    kernel.NotReady: 503,
}

# Headers a domain error's problem carries besides the defaults (most specific class wins).
# A refused webhook is challenged for a signature, not for the bearer token of the API.
DOMAIN_ERROR_HEADERS: dict[type[kernel.DomainError], dict[str, str]] = {
    kernel.NotReady: {"Retry-After": str(RETRY_AFTER_SECONDS)},
    triggers.WebhookRejected: {
        "WWW-Authenticate": 'HMAC-SHA256 realm="scaicrew-webhooks", headers="X-ScaiCrew-Signature"'
    },
}


class ApiError(ProblemException):
    """A transport-level problem raised by the handler layer (validation, auth, limits)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        details: Mapping[str, object] | None = None,
        type_slug: str | None = None,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(
            status=status,
            title=_STATUS_CODES.get(status, _fallback(status))[2],
            detail=message,
            headers=dict(headers or {}),
        )
        self.message = message
        self.details = dict(details or {})
        self.type_slug = type_slug
        self.code = code


def _fallback(status: int) -> tuple[str, str, str]:
    if status >= 500:
        return _STATUS_CODES[500]
    return ("ValidationError", "client-error", "Client Error")


def problem_body(
    status: int,
    message: str,
    *,
    details: Mapping[str, object] | None = None,
    type_slug: str | None = None,
    instance: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """Build the problem document for ``status``; codes and titles come from one table (a
    handler-layer problem may name a more specific ``code``, such as ``InvalidCursor``)."""
    default_code, default_slug, title = _STATUS_CODES.get(status, _fallback(status))
    code = code or default_code
    body: dict[str, Any] = {
        "type": f"/problems/{type_slug or default_slug}",
        "title": title,
        "status": status,
        "detail": message,
        "error": {
            "code": code,
            "message": message,
            "details": dict(details or {}),
            "trace_id": current_trace_id(),
        },
    }
    body["instance"] = instance or ""
    return body


def problem_bytes(status: int, message: str, **kwargs: Any) -> bytes:
    return json.dumps(problem_body(status, message, **kwargs)).encode("utf-8")


def _headers_for(status: int, extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {k: v for k, v in (extra or {}).items() if k.lower() != "content-type"}
    if status == 401:
        headers.setdefault("WWW-Authenticate", WWW_AUTHENTICATE)
    return headers


def _domain_status(exc: kernel.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in DOMAIN_ERRORS:
            return DOMAIN_ERRORS[cls]  # type: ignore[index]
    return 500


def _domain_headers(exc: kernel.DomainError) -> dict[str, str]:
    for cls in type(exc).__mro__:
        if cls in DOMAIN_ERROR_HEADERS:
            return dict(DOMAIN_ERROR_HEADERS[cls])  # type: ignore[index]
    return {}


def _describe(exc: BaseException) -> tuple[int, str, dict[str, object], str | None, dict[str, str]]:
    """Return (status, message, details, type slug, headers) for any exception."""
    if isinstance(exc, ApiError):
        return exc.status, exc.message, exc.details, exc.type_slug, dict(exc.headers or {})
    if isinstance(exc, kernel.DomainError):
        status = _domain_status(exc)
        return status, exc.message, exc.details(), exc.problem_slug(), _domain_headers(exc)
    if isinstance(exc, ProblemException):
        # Connexion's own problems (security, media type, its validators as a fallback).
        status = exc.status or 500
        if status >= 500:
            return 500, "The server failed to handle this request.", {}, None, {}
        return status, str(exc.detail or exc.title or ""), {}, None, dict(exc.headers or {})
    if isinstance(exc, HTTPException):
        # Routing (404, 405 with Allow) and Connexion's Forbidden.
        status = exc.status_code
        if status >= 500:
            return 500, "The server failed to handle this request.", {}, None, {}
        message = _HTTP_MESSAGES.get(status, str(exc.detail))
        return status, message, {}, None, dict(exc.headers or {})
    return 500, "The server failed to handle this request.", {}, None, {}


_HTTP_MESSAGES = {
    404: "No resource at this path.",
    405: "This method is not allowed on this path; see the Allow header.",
}


def _allowed_methods(path: str) -> str | None:
    try:
        table = app_context().allowed_methods
    except LookupError:
        return None
    return None if table is None else table.for_path(path)


def render_unavailable(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """Render a failure to reach the database (the composition root names which exceptions
    mean that) as 503 with ``Retry-After``; the cause is logged, never sent."""
    logger.warning("database unavailable on %s %s", request.method, request.url.path, exc_info=exc)
    problem = ApiError(
        503,
        "The service cannot reach its database right now; try again shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
    return render_exception(request, problem)


def render_exception(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """Render any exception as a problem+json response (the one error handler)."""
    status, message, details, slug, headers = _describe(exc)
    if status == 405:
        allowed = _allowed_methods(request.url.path)
        if allowed:
            headers["Allow"] = allowed
    if status == 500:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    code = exc.code if isinstance(exc, ApiError | kernel.DomainError) else None
    body = problem_bytes(
        status, message, details=details, type_slug=slug, instance=request.url.path, code=code
    )
    return ConnexionResponse(
        status_code=status,
        mimetype=PROBLEM_JSON,
        body=body,
        headers=_headers_for(status, headers),
    )
