"""How values are written to JSON columns (``domain.persistence.engine.json_text``)."""

from __future__ import annotations

import json
import math

import pytest

from domain.persistence.engine import json_text


@pytest.mark.parametrize(
    "value",
    [
        {"event": 1, "nested": {"list": [1, 2.5, None, True, "é ✓"]}},
        [],
        "text with \u0000 and \n",
        2**63 - 1,
        -(2**63),
    ],
)
def test_what_orjson_writes_reads_back_equal(value):
    assert json.loads(json_text(value)) == value


@pytest.mark.parametrize(
    "value",
    [
        {"big": 2**64},  # over 64 bits
        {"small": -(2**63) - 1},
        {1: "a non-string key"},
        {"lone": "\ud800"},  # a lone surrogate
    ],
)
def test_what_orjson_refuses_the_standard_library_writes_as_before(value):
    assert json_text(value) == json.dumps(value)


def test_non_finite_floats_are_written_as_null_as_response_bodies_show_them():
    assert json.loads(json_text({"x": math.nan, "y": math.inf})) == {"x": None, "y": None}
