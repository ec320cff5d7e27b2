"""Connexion's security check of an operation whose alternatives are all bearer schemes, without
its per-request request object and wrapper layers (ADR 0054).

Connexion 3.3's ``SecurityOperation`` builds a ``ConnexionRequest`` and its ``Headers`` on every
request, then runs three nested wrappers per scheme (``verify_fn``, the bearer wrapper, the
generic check) that each parse the ``Authorization`` header again. For the operations of
``openapi.yaml`` that accept any of ``sessionAuth``, ``serviceAuth`` and ``apiKeyAuth`` (all
``http``/``bearer``), ``BearerSecurityOperation`` reads the header once from the scope and calls
the info functions in the spec's order, with Connexion's rules step for step: a function
answering ``NO_VALUE`` passes to the next, an error is kept and the next one tried, the first
claims win, and when none does the most specific kept error is raised (403, else 401, else the
lowest status), or "No authorization token provided". Any other security (an ``apiKey`` in the
query, AND-ed schemes, scopes, info functions that take ``request`` or ``required_scopes``) keeps
Connexion's own path. ``tests/unit/handlers/test_bearer_security.py`` compares both answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from connexion.exceptions import OAuthProblem, OAuthResponseProblem
from connexion.middleware.security import SecurityAPI, SecurityMiddleware, SecurityOperation
from connexion.operations import AbstractOperation
from connexion.security import NO_VALUE, SecurityHandlerFactory
from connexion.spec import Specification
from connexion.utils import get_function_from_name, inspect_function_arguments
from starlette.types import Receive, Scope, Send

from handlers._http import scope_header

#: Connexion's detail when no credential of an accepted kind came with the request.
NO_TOKEN = "No authorization token provided"
#: Connexion's detail for an ``Authorization`` header without a space-separated value.
BAD_HEADER = "Invalid authorization header"
#: Connexion's detail when an info function answers None.
NOT_VALID = "Provided token is not valid"


def bearer_functions(security: list[dict[str, list[str]]], schemes: dict[str, Any]) -> list[Any]:
    """The info functions of ``security``'s alternatives, in order, when each is a single
    ``http`` bearer scheme without scopes whose function takes only the token; else ``[]``."""
    functions = []
    for requirement in security:
        if len(requirement) != 1:
            return []
        ((name, scopes),) = requirement.items()
        scheme = schemes.get(name, {})
        if scheme.get("type") != "http" or str(scheme.get("scheme", "")).lower() != "bearer":
            return []
        if scopes or not scheme.get("x-bearerInfoFunc"):
            return []
        function = get_function_from_name(scheme["x-bearerInfoFunc"])
        arguments, has_kwargs = inspect_function_arguments(function)
        if has_kwargs or "request" in arguments or "required_scopes" in arguments:
            return []
        functions.append(function)
    return functions


async def verify_bearer(functions: list[Callable[[str], Any]], header: str | None) -> Any:
    """The claims of the first function that accepts the bearer token in ``header``.

    :raises OAuthProblem: no bearer token, a malformed header, or (the most specific error
        kept) every function refused the token.
    """
    if not header:
        raise OAuthProblem(detail=NO_TOKEN)
    try:
        kind, token = header.split(maxsplit=1)
    except ValueError:
        raise OAuthProblem(detail=BAD_HEADER) from None  # each scheme raises it, so Connexion too
    if kind.lower() != "bearer":
        raise OAuthProblem(detail=NO_TOKEN)
    errors: list[Exception] = []
    for function in functions:
        try:
            claims = function(token)
            while asyncio.iscoroutine(claims):
                claims = await claims
            if claims is NO_VALUE:
                continue
            if claims is None:
                raise OAuthResponseProblem(detail=NOT_VALID)
            return claims
        except Exception as exc:  # Connexion keeps each scheme's error and tries the next
            errors.append(exc)
    if errors:
        SecurityHandlerFactory._raise_most_specific(errors)
    raise OAuthProblem(detail=NO_TOKEN)


class BearerSecurityOperation(SecurityOperation):
    """Connexion's ``SecurityOperation``, bearer-only alternatives checked from the scope."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bearer = bearer_functions(self.security or [], self.security_schemes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.security or not self._bearer:
            await super().__call__(scope, receive, send)
            return
        claims = await verify_bearer(self._bearer, scope_header(scope, "authorization"))
        context = scope.setdefault("extensions", {}).setdefault("connexion_context", {})
        context.update({"user": claims.get("sub", claims.get("uid")), "token_info": claims})
        await self.next_app(scope, receive, send)


class _BearerSecurityApi(SecurityAPI):
    def make_operation(self, operation: AbstractOperation | Specification) -> SecurityOperation:
        return BearerSecurityOperation.from_operation(
            operation,
            next_app=self.next_app,
            security_handler_factory=self.security_handler_factory,
        )


class BearerSecurityMiddleware(SecurityMiddleware):
    """Connexion's ``SecurityMiddleware`` with ``BearerSecurityOperation``s."""

    api_cls = _BearerSecurityApi
