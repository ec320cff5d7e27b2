"""Request validators that report every problem with its location, as the contract promises.

Connexion's defaults stop at the first error, flatten it into one string with a dump of the
schema, and answer 500 for a body that is not UTF-8 (connexion#1860). These subclasses keep
Connexion's validation logic and change only how failures are reported. They are plugged in
through ``validator_map``, Connexion's documented extension point.

Speed (ADR 0049): every schema is first checked by a compiled validator (``jsonschema-rs``,
built once per schema and kept). It is at least as strict as Connexion's jsonschema validator
on this contract (it checks formats that jsonschema skips, and does not know OpenAPI's
``nullable``), so a value it accepts is valid; anything it refuses goes through the jsonschema
validator as before, which decides and reports. The answer never depends on the fast path.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncGenerator, Iterable
from typing import Any

import jsonschema_rs
from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator
from connexion.validators import (
    FormDataValidator,
    JSONRequestBodyValidator,
    MultiPartFormDataValidator,
    ParameterValidator,
)
from jsonschema import Draft4Validator, ValidationError
from starlette.datastructures import Headers, QueryParams
from starlette.types import Scope

from handlers.problems import ApiError

#: The scope extension ``handlers.prepared`` reads the resolved parameters from.
RESOLVED_PARAMETERS = "scaicrew_resolved_parameters"

_MAX_ERRORS = 20
# Bodies nest objects and arrays at most this deep. Connexion parses the body a second time,
# deeper in the stack (connexion.lifecycle.ConnexionRequest.get_body -> Starlette's
# Request.json), so a body json.loads accepted here could still raise RecursionError there and
# answer 500; a fixed bound far below the recursion limit keeps the outcome deterministic. No
# upstream issue found.
MAX_BODY_DEPTH = 100


# id(schema) -> (schema, compiled check, jsonschema validator); the schema is kept so its id
# stays its own. Schemas come from the loaded spec, so this holds one entry per schema in it.
_COMPILED: dict[int, tuple[Any, Any, Any]] = {}


def _never(_value: Any) -> bool:
    return False


def compiled(schema: Any, validator_class: Any = Draft4Validator) -> tuple[Any, Any]:
    """``schema``'s (fast check, jsonschema validator), built on first use and kept."""
    key = id(schema)
    found = _COMPILED.get(key)
    if found is None or found[0] is not schema or type(found[2]) is not validator_class:
        try:
            fast = jsonschema_rs.Draft4Validator(schema, validate_formats=True).is_valid
        except (ValueError, TypeError):  # a schema it cannot compile: jsonschema alone decides
            fast = _never
        slow = validator_class(schema, format_checker=Draft4Validator.FORMAT_CHECKER)
        found = (schema, fast, slow)
        _COMPILED[key] = found
    return found[1], found[2]


class _UnrepresentableNumber(ValueError):
    """NaN, Infinity or a float that overflows: Python accepts them, JSON and databases do not."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _UnrepresentableNumber(text)
    return value


def _no_constant(name: str) -> Any:
    raise _UnrepresentableNumber(name)


def _problem(location: str, reason: str, message: str, **where: str) -> dict[str, str]:
    return {"location": location, **where, "reason": reason, "message": message}


def _pointer(path: Iterable[Any]) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else ""


def _short(message: str) -> str:
    # jsonschema messages quote the offending value; keep huge values from flooding the body.
    return message if len(message) <= 300 else message[:297] + "..."


_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a JSON object",
    "array": "an array",
    "null": "null",
}
_FORMAT_WORDS = {"date-time": "an RFC 3339 date-time with a UTC offset", "uri": "a URI"}


def _listing(values: Any) -> str:
    items = values if isinstance(values, list) else [values]
    return ", ".join(
        "null" if v is None else json.dumps(v) if not isinstance(v, str) else v for v in items
    )


def _count(n: Any, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def plain_message(err: ValidationError) -> str:
    """What a failed JSON Schema keyword means, in words (no Python reprs, no value echoed)."""
    keyword, expected = str(err.validator), err.validator_value
    if keyword == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return "Must be " + " or ".join(_TYPE_WORDS.get(k, str(k)) for k in kinds) + "."
    if keyword == "required":
        missing = [
            name for name in expected if isinstance(err.instance, dict) and name not in err.instance
        ]
        return f"Required member(s) missing: {_listing(missing or expected)}."
    if keyword == "enum":
        return f"Must be one of: {_listing(expected)}."
    if keyword == "minLength":
        return f"Must be at least {_count(expected, 'character', 'characters')} long."
    if keyword == "maxLength":
        return f"Must be at most {_count(expected, 'character', 'characters')} long."
    if keyword == "pattern":
        if expected == "^[^\\x00]*$":
            return "Must not contain NUL characters."
        if len(str(expected)) > 80:
            return "Does not have the format this field describes (see the contract)."
        return f"Does not match the pattern {expected}."
    if keyword in ("minimum", "maximum"):
        exclusive = err.schema.get(f"exclusive{keyword.capitalize()}") is True
        if keyword == "minimum":
            return f"Must be {'more than' if exclusive else 'at least'} {expected}."
        return f"Must be {'less than' if exclusive else 'at most'} {expected}."
    if keyword == "minItems":
        return f"Must hold at least {_count(expected, 'item', 'items')}."
    if keyword == "maxItems":
        return f"Must hold at most {_count(expected, 'item', 'items')}."
    if keyword == "minProperties":
        return f"Must hold at least {_count(expected, 'member', 'members')}."
    if keyword == "maxProperties":
        return f"Must hold at most {_count(expected, 'member', 'members')}."
    if keyword == "uniqueItems":
        return "Items must be unique."
    if keyword == "format":
        return f"Must be {_FORMAT_WORDS.get(str(expected), f'in {expected} format')}."
    if keyword in ("oneOf", "anyOf"):
        return "Matches none of the allowed shapes."
    if keyword == "multipleOf":
        return f"Must be a multiple of {expected}."
    if keyword == "additionalProperties" and isinstance(err.instance, dict):
        return "Unknown member(s) are not allowed."
    return f"Is not valid here (rule {keyword})."


def _raise(problems: list[dict[str, str]]) -> None:
    first = problems[0]
    where = first.get("name") or first.get("pointer") or ""
    summary = f"{first['location']} {where}".strip() + f": {first['message']}"
    if len(problems) > 1:
        summary += f" (and {len(problems) - 1} more)"
    raise ApiError(400, _short(summary), details={"errors": problems[:_MAX_ERRORS]})


class ReportingParameterValidator(ParameterValidator):
    """Validate query, path and header parameters and report all failures at once."""

    _checks: tuple[tuple[str, tuple[dict[str, Any], ...]], ...] | None = None
    _query_names: frozenset[str] = frozenset()

    def _plan(self) -> tuple[tuple[str, tuple[dict[str, Any], ...]], ...]:
        """The parameters to check per location, each name once (Connexion lists a path-level
        parameter once more per operation-level one), found at the first request."""
        checks = []
        for location in ("query", "path", "header"):
            seen: dict[str, dict[str, Any]] = {}
            for param in self.parameters.get(location, []):
                seen.setdefault(param["name"], param)
            checks.append((location, tuple(seen.values())))
        names = [p["name"] for p in self.parameters.get("query", [])]
        self._query_names = frozenset([*names, *self.security_query_params])
        self._checks = tuple(checks)
        return self._checks

    def validate(self, scope: Scope) -> None:
        """Check the request's parameters; when valid, hand what was resolved to the handler's
        arguments (``handlers.prepared``). What Connexion's ``ConnexionRequest`` resolves, read
        straight from the scope (no request object per request).

        :raises ApiError: 400 naming every parameter that is missing, unknown or invalid.
        """
        checks = self._checks or self._plan()
        path = self.uri_parser.resolve_path(scope.get("path_params", {}))
        query: dict[str, Any] = {}  # what parsing and resolving an empty query gives
        if scope.get("query_string"):
            args = QueryParams(scope["query_string"])
            query = self.uri_parser.resolve_query({k: args.getlist(k) for k in args})
        problems: list[dict[str, str]] = []
        if self.strict_validation and query:
            for name in sorted(set(query) - self._query_names):
                problems.append(
                    _problem(
                        "query",
                        "unknown",
                        "This query parameter is not accepted.",
                        name=_short(name),
                    )
                )
        for location, params in checks:
            if not params:
                continue
            if location == "query":
                values: Any = query
            elif location == "path":
                values = path
            else:
                values = Headers(scope=scope)
            for param in params:
                name = param["name"]
                key = name.replace("-", "_") if location == "path" else name
                problems.extend(self._check(location, param, values.get(key)))
        if problems:
            _raise(problems)
        scope.setdefault("extensions", {})[RESOLVED_PARAMETERS] = (path, query)

    @staticmethod
    def _check(location: str, param: dict[str, Any], value: Any) -> list[dict[str, str]]:
        name = param["name"]
        if value is None:
            if param.get("required"):
                return [_problem(location, "required", "This parameter is required.", name=name)]
            return []
        schema = param.get("schema", param)
        fast, validator = compiled(schema)
        if fast(value):
            return []
        return [
            _problem(location, str(err.validator), plain_message(err), name=name)
            for err in validator.iter_errors(value)
        ]


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects and arrays more than ``limit`` levels (iterative walk)."""
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if not isinstance(node, (dict, list)):
            continue
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children)
    return False


class ReportingJSONBodyValidator(JSONRequestBodyValidator):
    """Parse a JSON body strictly as UTF-8 and report every schema violation with a pointer."""

    async def _parse(self, stream: AsyncGenerator[bytes, None], scope: Scope) -> Any:
        raw = b"".join([chunk async for chunk in stream])
        if not raw:
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            _raise(
                [
                    _problem(
                        "body",
                        "encoding",
                        f"The body is not valid UTF-8 (byte {exc.start}).",
                        pointer="",
                    )
                ]
            )
        try:
            body = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
            if _deeper_than(body, MAX_BODY_DEPTH):
                raise RecursionError
            # JSON escapes can spell lone surrogates ("\\ud800"), which no database can store;
            # only an escape can (strict UTF-8 decoding refuses encoded surrogates).
            if "\\u" in text:
                json.dumps(body, ensure_ascii=False).encode("utf-8")
            return body
        except UnicodeEncodeError:
            _raise(
                [
                    _problem(
                        "body",
                        "encoding",
                        "The body contains an unpaired UTF-16 surrogate escape.",
                        pointer="",
                    )
                ]
            )
        except json.JSONDecodeError as exc:
            _raise(
                [
                    _problem(
                        "body",
                        "syntax",
                        f"The body is not valid JSON: {exc.msg} at line {exc.lineno} "
                        f"column {exc.colno}.",
                        pointer="",
                    )
                ]
            )
        except RecursionError:
            message = f"The body nests objects and arrays more than {MAX_BODY_DEPTH} levels deep."
            _raise([_problem("body", "syntax", message, pointer="")])
        except ValueError:  # _UnrepresentableNumber, or an integer over Python's digit limit
            _raise(
                [
                    _problem(
                        "body",
                        "number",
                        "The body holds a number that cannot be represented "
                        "(NaN, Infinity, out of range, or too many digits).",
                        pointer="",
                    )
                ]
            )

    def _validate(self, body: Any) -> dict[str, Any] | None:
        if body is None:
            _raise([_problem("body", "required", "A JSON body is required.", pointer="")])
        fast, validator = compiled(self._schema, Draft4RequestValidator)
        if fast(body):
            return None
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            _raise([problem for err in errors for problem in self._explain(err)])
        return None

    @classmethod
    def _explain(cls, err: ValidationError) -> list[dict[str, str]]:
        # A body that matches no branch of a oneOf/anyOf (the trigger kinds) is described by
        # the branch it came closest to, so the problem names the field (``/cron``), not "".
        if err.validator in ("oneOf", "anyOf") and err.context:
            branches: dict[Any, list[ValidationError]] = {}
            for sub in err.context:
                branches.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
            # A branch whose tag (a top-level enum, like ``kind``) does not match is farther.
            closest = min(
                branches.values(),
                key=lambda errs: (
                    any(e.validator in ("enum", "const") and len(e.path) == 1 for e in errs),
                    len(errs),
                ),
            )
            return [cls._describe(sub) for sub in closest]
        return [cls._describe(err)]

    @staticmethod
    def _describe(err: ValidationError) -> dict[str, str]:
        pointer = _pointer(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {}))
            unknown = sorted(k for k in err.instance if k not in allowed)
            if unknown:
                return _problem(
                    "body",
                    "additionalProperties",
                    _short("Unknown member(s): " + ", ".join(unknown)),
                    pointer=_pointer([*err.absolute_path, unknown[0]]),
                )
        return _problem("body", str(err.validator), plain_message(err), pointer=pointer)


VALIDATOR_MAP = {
    "parameter": ReportingParameterValidator,
    # Replacing "body" replaces the whole map, so the form validators are listed again.
    "body": MediaTypeDict(
        {
            "*/*json": ReportingJSONBodyValidator,
            "application/x-www-form-urlencoded": FormDataValidator,
            "multipart/form-data": MultiPartFormDataValidator,
        }
    ),
}
