"""JSON bodies in and out, with orjson (ADR 0049): one encoder for every response body.

``dumps`` is what Connexion's ``Jsonifier`` calls for every JSON response; ``json_bytes`` is the
same encoding for code that writes bytes itself (problem bodies, the bench's baseline). orjson
refuses what JSON cannot say the way the standard library would not: a value it cannot encode
(an integer over 64 bits, a non-string key) falls back to the standard library, so no body that
encoded before fails now.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from connexion.jsonifier import JSONEncoder, Jsonifier

# Datetimes as Connexion writes them (a naive one gets a ``Z``), not orjson's way.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME


def _default(value: Any) -> Any:
    return JSONEncoder().default(value)


def json_bytes(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: big integers, non-string keys
        return json.dumps(value, cls=JSONEncoder, ensure_ascii=False).encode("utf-8")


def response_bytes(value: Any) -> bytes:
    """A JSON response body as Connexion's jsonifier writes one: the JSON, then a newline."""
    return json_bytes(value) + b"\n"


class FastJsonifier(Jsonifier):
    """Connexion's jsonifier with orjson for ``dumps`` (``loads`` stays Connexion's)."""

    def dumps(self, data: Any, **kwargs: Any) -> str:
        if kwargs:  # a caller asking for specific options gets the standard library
            return super().dumps(data, **kwargs)
        return response_bytes(data).decode("utf-8")
