"""Connexion's per-operation work done once per operation instead of once per request (ADR 0049).

Connexion 3.3's ``AsyncOperation`` builds a new ``StarletteDecorator`` on every request, which
wraps the handler again, inspects its signature (``inspect.signature``) and builds a new URI
parser from the operation's parameter definitions: all of it depends only on the operation.
``PreparedOperation`` builds the decorated handler and the URI parser on its first request and
reuses them; what a request sees (parameters, body, the handler's arguments, the response) is
unchanged. ``use_prepared_operations`` plugs it in through the API class Connexion's app uses.

Connexion's request validation does the same per request: a new URI parser and parameter
validator, a ``MediaTypeDict`` of the accepted media types, and for a body a new body validator
with one more URI parser. ``PreparedRequestValidationOperation`` builds each once (per media type
and encoding for bodies) and reuses it; the checks and their answers are Connexion's.

Likewise Connexion's security handlers inspect the signature of our credential functions twice
per request (``_accepts_kwarg``); ``SECURITY_MAP`` (Connexion's ``security_map`` extension point)
holds the same handlers with that answer remembered per function.
"""

from __future__ import annotations

import asyncio
import copy
import functools
from collections.abc import Callable
from typing import Any

from connexion import AsyncApp
from connexion.apps.asynchronous import AsyncApi, AsyncOperation
from connexion.context import context, operation
from connexion.decorators import StarletteDecorator
from connexion.decorators.parameter import (
    CONTEXT_NAME,
    AsyncParameterDecorator,
    _get_body_argument,
    _get_file_arguments,
    _get_query_defaults,
    _get_val_from_param,
    _query_args_helper,
    unwrap_decorators,
)
from connexion.http_facts import FORM_CONTENT_TYPES
from connexion.lifecycle import ConnexionRequest
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from connexion.operations import AbstractOperation
from connexion.security import SECURITY_HANDLERS
from connexion.uri_parsing import OpenAPIURIParser
from connexion.utils import (
    deep_merge,
    inspect_function_arguments,
    is_nullable,
    split_content_type,
)
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from handlers.validation import RESOLVED_PARAMETERS


class PreparedURIParser(OpenAPIURIParser):
    """Connexion's OpenAPI URI parser with ``param_schemas`` computed once: Connexion's property
    builds the dictionary of every parameter's schema again on each lookup (once per parameter
    per request), from definitions that are fixed when the parser is made."""

    @functools.cached_property
    def param_schemas(self) -> dict[str, Any]:  # type: ignore[override]
        return {k: v.get("schema", {}) for k, v in self.param_defns.items()}


class _ArgumentPlan:
    """What ``get_arguments`` looks up in the operation on every request, looked up once."""

    def __init__(
        self, operation: Any, arguments: list[str], has_kwargs: bool, sanitize: Any
    ) -> None:
        self.operation = operation
        self.path = {p["name"]: p for p in operation.parameters if p["in"] == "path"}
        self.query = {p["name"]: p for p in operation.parameters if p["in"] == "query"}
        self.query_defaults = _get_query_defaults(self.query)
        self.trace = operation.method.upper() == "TRACE"
        self.has_body = bool(operation.is_request_body_defined)
        #: Whether the handler takes the body (Connexion's ``_maybe_get_body`` test): reading
        #: and defaulting it is wasted otherwise (the webhook's handler reads the raw bytes).
        #: The body's argument name is the request body's ``x-body-name``, whatever the media
        #: type (``OpenAPIOperation.body_name`` ignores it), so it is decided once.
        self.takes_body = self.has_body and (
            has_kwargs or sanitize(operation.body_name(None)) in arguments
        )

    def arguments(
        self,
        request: ConnexionRequest,
        body: Any,
        files: Any,
        arguments: list[str],
        has_kwargs: bool,
        sanitize: Callable[[str], str],
    ) -> dict[str, Any]:
        """Connexion's ``get_arguments``, step for step, over the definitions found once."""
        found: dict[str, Any] = {}
        for name, value in request.path_params.items():
            definition = self.path.get(name)
            found[sanitize(name)] = (
                value if definition is None else _get_val_from_param(value, definition)
            )
        if self.query_defaults:
            query = deep_merge(copy.deepcopy(self.query_defaults), request.query_params)
        else:  # what merging into no defaults gives, without copying them
            query = dict(request.query_params)
        if query:
            found.update(_query_args_helper(self.query, query, arguments, has_kwargs, sanitize))
        if self.trace:
            return found
        content_type = request.mimetype if self.has_body else ""
        # Connexion computes the body argument and drops it when the handler does not take it
        # (JSON bodies); form bodies keep its path.
        if content_type in FORM_CONTENT_TYPES or self.takes_body:
            found.update(
                _get_body_argument(
                    body,
                    operation=self.operation,
                    arguments=arguments,
                    has_kwargs=has_kwargs,
                    sanitize=sanitize,
                    content_type=content_type,
                )
            )
            if files:
                schema = self.operation.body_schema(content_type)
                found.update(_get_file_arguments(files, arguments, schema, has_kwargs))
        return found


class _PreparedParameterDecorator(AsyncParameterDecorator):
    """Connexion's parameter decorator with the per-operation work done once.

    What the handler receives is what Connexion's gives it; not repeated per request are:
    the parameter definitions ``get_arguments`` collects and the query defaults it computes
    (``_ArgumentPlan``), pythonic parameter names (regular expressions and ``inflection``, now
    once per name), the form parser for bodies that are not forms (it finds no files), and the
    resolution of path and query parameters the request validation already did
    (``RESOLVED_PARAMETERS``, set on the request by ``PreparedOperation``).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sanitize_fn = functools.lru_cache(maxsize=1024)(self.sanitize_fn)

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        arguments, has_kwargs = inspect_function_arguments(unwrap_decorators(function))
        plan: _ArgumentPlan | None = None  # built at the first request (operation is bound then)
        sanitize = self.sanitize_fn

        @functools.wraps(function)
        async def wrapper(request: ConnexionRequest) -> Any:
            nonlocal plan
            if plan is None:
                current = operation._get_current_object()  # type: ignore[attr-defined]
                plan = _ArgumentPlan(current, arguments, has_kwargs, sanitize)
            request_body, files = None, {}
            if plan.has_body:  # without a request body in the spec, arguments() reads neither
                if plan.takes_body:
                    request_body = request.get_body()  # Connexion's _maybe_get_body
                while asyncio.iscoroutine(request_body):
                    request_body = await request_body
                if request.mimetype in FORM_CONTENT_TYPES:
                    files = await request.files()
            kwargs = plan.arguments(request, request_body, files, arguments, has_kwargs, sanitize)
            # The rest of Connexion's prep_kwargs: pythonic names, then the security context.
            kwargs = {sanitize(k): v for k, v in kwargs.items()}
            for key, value in context.items():
                if has_kwargs or key in arguments:
                    kwargs[key] = value
            if CONTEXT_NAME in arguments:
                kwargs[CONTEXT_NAME] = context
            return await function(**kwargs)

        return wrapper


class _PreparedDecorator(StarletteDecorator):
    @property
    def _parameter_decorator_cls(self) -> Any:
        return _PreparedParameterDecorator

    @property
    def _sync_async_decorator(self) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Connexion's, with the handler's kind decided when it is decorated, not per call."""

        def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
            if asyncio.iscoroutinefunction(function):
                return function

            @functools.wraps(function)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                return await run_in_threadpool(function, *args, **kwargs)

            return wrapper

        return decorator


class PreparedOperation(AsyncOperation):
    """An ``AsyncOperation`` whose decorated handler and URI parser are built once."""

    _prepared: tuple[Any, Callable[..., Any]] | None = None

    def _prepare(self) -> tuple[Any, Callable[..., Any]]:
        # Runs inside a request: the URI parser reads the operation from Connexion's context.
        decorator = _PreparedDecorator(
            pythonic_params=self.pythonic_params, jsonifier=self.jsonifier
        )
        prepared = (decorator.uri_parser, decorator.decorate(self._fn))
        self._prepared = prepared
        return prepared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        uri_parser, handler = self._prepared or self._prepare()
        request = ConnexionRequest(scope, receive, uri_parser=uri_parser)
        resolved = scope.get("extensions", {}).get(RESOLVED_PARAMETERS)
        if resolved is not None:  # what request.path_params and .query_params would compute
            request._path_params, request._query_params = resolved
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


class PreparedRequestValidationOperation(RequestValidationOperation):
    """Connexion's request validation of one operation, its validators built once."""

    _parameters: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._accepted_media: set[str] = set()
        self._bodies: dict[tuple[str, str], Any] = {}

    def _parameter_validator(self) -> Any:
        operation = self._operation
        self._parameters = self._validator_map["parameter"](
            operation.parameters,
            uri_parser=operation._uri_parser_class(
                operation.parameters, operation.body_definition()
            ),
            strict_validation=self.strict_validation,
            security_query_params=self.security_query_params,
        )
        return self._parameters

    def _body_validator(self, mime_type: str, encoding: str) -> Any:
        """The body validator for ``mime_type`` (None: no schema or no validator for it)."""
        key = (mime_type, encoding)
        if key in self._bodies:
            return self._bodies[key]
        operation, validator = self._operation, None
        schema = operation.body_schema(mime_type)
        if schema:
            try:
                validator_class = self._validator_map["body"][mime_type]  # type: ignore[index]
            except KeyError:
                pass  # Connexion skips validation too (and logs it at INFO)
            else:
                validator = validator_class(
                    schema=schema,
                    required=operation.request_body.get("required", False),
                    nullable=is_nullable(operation.body_definition(mime_type)),
                    encoding=encoding,
                    strict_validation=self.strict_validation,
                    uri_parser=operation.uri_parser_class(
                        operation.parameters, operation.body_definition()
                    ),
                )
        if len(self._bodies) < 16:  # media types come from clients: keep a few
            self._bodies[key] = validator
        return validator

    def extract_content_type(self, headers: list[tuple[bytes, bytes]]) -> tuple[str, str]:
        """Connexion's answer, without its per-call ``typing`` subscripts: the first
        ``Content-Type``'s media type (else the operation's first, else octet-stream) and its
        charset (else utf-8)."""
        content_type = None
        for key, value in headers:
            if key.lower() == b"content-type":
                content_type = value.decode("latin-1")
                break
        mime_type, encoding = split_content_type(content_type)
        if mime_type is None:
            consumes = self._operation.consumes
            mime_type = consumes[0] if consumes else "application/octet-stream"
        return mime_type, encoding or "utf-8"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        (self._parameters or self._parameter_validator()).validate(scope)
        mime_type, encoding = self.extract_content_type(scope["headers"])
        if mime_type not in self._accepted_media:
            self.validate_mime_type(mime_type)  # raises for a type the operation refuses
            if len(self._accepted_media) < 16:
                self._accepted_media.add(mime_type)
        validator = self._body_validator(mime_type, encoding)
        if validator is not None:
            receive, scope = await validator.wrap_receive(receive, scope=scope)
        await self.next_app(scope, receive, send)


class _PreparedRequestValidationApi(RequestValidationAPI):
    def make_operation(self, operation: AbstractOperation) -> RequestValidationOperation:
        return PreparedRequestValidationOperation(
            self.next_app,
            operation=operation,
            strict_validation=self.strict_validation,
            validator_map=self.validator_map,
        )


class PreparedRequestValidationMiddleware(RequestValidationMiddleware):
    """Connexion's ``RequestValidationMiddleware`` with ``PreparedRequestValidationOperation``s."""

    api_cls = _PreparedRequestValidationApi


@functools.cache
def _accepts_kwarg(func: Callable[..., Any], keyword: str) -> bool:
    arguments, has_kwargs = inspect_function_arguments(func)
    return bool(has_kwargs or keyword in arguments)


#: Connexion's security handlers, each with ``_accepts_kwarg`` answered once per function.
SECURITY_MAP = {
    kind: type(handler.__name__, (handler,), {"_accepts_kwarg": staticmethod(_accepts_kwarg)})
    for kind, handler in SECURITY_HANDLERS.items()
}
