"""Connexion's per-operation work done once per operation instead of once per request (ADR 0049).

Connexion 3.3's ``AsyncOperation`` builds a new ``StarletteDecorator`` on every request, which
wraps the handler again, inspects its signature (``inspect.signature``) and builds a new URI
parser from the operation's parameter definitions: all of it depends only on the operation.
``PreparedOperation`` builds the decorated handler and the URI parser on its first request and
reuses them; what a request sees (parameters, body, the handler's arguments, the response) is
unchanged. ``use_prepared_operations`` plugs it in through the API class Connexion's app uses.

Likewise Connexion's security handlers inspect the signature of our credential functions twice
per request (``_accepts_kwarg``); ``SECURITY_MAP`` (Connexion's ``security_map`` extension point)
holds the same handlers with that answer remembered per function.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from connexion import AsyncApp
from connexion.apps.asynchronous import AsyncApi, AsyncOperation
from connexion.decorators import StarletteDecorator
from connexion.lifecycle import ConnexionRequest
from connexion.operations import AbstractOperation
from connexion.security import SECURITY_HANDLERS
from connexion.utils import inspect_function_arguments
from starlette.types import Receive, Scope, Send


class PreparedOperation(AsyncOperation):
    """An ``AsyncOperation`` whose decorated handler and URI parser are built once."""

    _prepared: tuple[Any, Callable[..., Any]] | None = None

    def _prepare(self) -> tuple[Any, Callable[..., Any]]:
        # Runs inside a request: the URI parser reads the operation from Connexion's context.
        decorator = StarletteDecorator(
            pythonic_params=self.pythonic_params, jsonifier=self.jsonifier
        )
        prepared = (decorator.uri_parser, decorator.decorate(self._fn))
        self._prepared = prepared
        return prepared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        uri_parser, handler = self._prepared or self._prepare()
        request = ConnexionRequest(scope, receive, uri_parser=uri_parser)
        response = await handler(request)
        return await response(scope, receive, send)


class PreparedApi(AsyncApi):
    def make_operation(self, operation: AbstractOperation) -> AsyncOperation:
        return PreparedOperation.from_operation(
            operation, pythonic_params=self.pythonic_params, jsonifier=self.jsonifier
        )


def use_prepared_operations(app: AsyncApp) -> None:
    """Serve ``app``'s APIs added from now on with ``PreparedOperation``s."""
    app._middleware_app.api_cls = PreparedApi  # the class its add_api instantiates


@functools.cache
def _accepts_kwarg(func: Callable[..., Any], keyword: str) -> bool:
    arguments, has_kwargs = inspect_function_arguments(func)
    return bool(has_kwargs or keyword in arguments)


#: Connexion's security handlers, each with ``_accepts_kwarg`` answered once per function.
SECURITY_MAP = {
    kind: type(handler.__name__, (handler,), {"_accepts_kwarg": staticmethod(_accepts_kwarg)})
    for kind, handler in SECURITY_HANDLERS.items()
}
