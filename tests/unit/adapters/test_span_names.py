"""The span name of each SQL statement traced (``scaicrew.observability.tracing``)."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql

from domain.runs.repository import _add_statement, _step_statement
from scaicrew.observability.tracing import span_name

PSYCOPG = postgresql.psycopg.dialect()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("statement", "name"),
    [
        ("SELECT 1", "db SELECT"),
        ("  update runs SET a = (SELECT 1)", "db UPDATE"),
        ("BEGIN", None),
        ("COMMIT", None),
        ("", "db SQL"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "db WITH"),
    ],
)
def test_a_statement_is_named_by_its_verb(statement, name):
    assert span_name(statement) == name


def test_a_statement_with_data_modifying_ctes_is_named_by_its_writes():
    step = str(_step_statement(frozenset({"next_seq", "state"}), 2, True).compile(dialect=PSYCOPG))
    added = str(_add_statement(1).compile(dialect=PSYCOPG))
    assert span_name(step) == "db WITH UPDATE INSERT"  # the run's row, then its events
    assert span_name(added) == "db WITH INSERT"
