"""The busiest statements run on the driver's cursor, compiled and typed by SQLAlchemy once.

SQLAlchemy's execution path costs about 130,000 instructions per statement on top of the
driver's 23,000 (a cache key for the compiled form, parameters processed through a generic
path, a result object set up): the 10 statements of a webhook delivery spent more in it than
SQLite and the rest of the use case together (ADR 0064). ``DriverStatements.execute`` does
what that path does for the statements this project runs most, once per statement where it
can: it compiles the statement with SQLAlchemy (the SQL and the order of its parameters),
takes each parameter's and each result column's processor from SQLAlchemy's types
(datetimes, JSON, booleans as SQLAlchemy stores and reads them), and per execution only
converts the values and calls the cursor. A driver error is raised as SQLAlchemy wraps it
(``IntegrityError``, ``OperationalError``...).

On PostgreSQL (ADR 0069) its parameters go by name, as psycopg takes them from SQLAlchemy, and
a disconnect invalidates the pool and the connection, as SQLAlchemy's path does. Rows inserted
together go in one ``INSERT ... VALUES (...), (...)`` (ADR 0070): psycopg's ``executemany``
enters pipeline mode for each call, which cost more client CPU than the statement itself
(185 us against 125 us for one row, and a wait for the pipeline's sync).

It steps aside, and ``Connection.execute`` runs the statement, whenever it would not do the
same: when the connection or engine has event listeners (statement tracing, the tests'
statement counters), outside a transaction (SQLAlchemy's path begins one), and for
statements it does not prepare (Python-side column defaults, parameters expanded or rendered
at execution, result columns it cannot name, bind names SQLAlchemy escaped).
"""

from __future__ import annotations

import keyword
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Insert, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement, TextClause

_MISSING = object()

#: Statements prepared per process at most. The statements given are the ones built once, at
#: import or once per dialect (a few dozen); past this, a statement built per call would be
#: kept alive by the cache, so it is run by SQLAlchemy instead.
MAX_PREPARED = 256
#: Most rows inserted by one multi-row statement (a run's step appends a few events); more go
#: through ``executemany``.
MAX_ROWS = 16


class _Row(tuple):  # type: ignore[type-arg]
    """A result row: a tuple whose columns are also attributes (as SQLAlchemy's ``Row``)."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))


class Rows:
    """What a statement returned: its rows, or how many rows it changed."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        """:raises sqlalchemy.exc.NoResultFound, MultipleResultsFound: not exactly one row."""
        if not self._rows:
            raise NoResultFound("No row was found when one was required")
        if len(self._rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when exactly one was required")
        return self._rows[0][0]


class _Prepared:
    """One statement compiled for a dialect: its SQL, how to build its parameters, its rows."""

    __slots__ = ("sql", "parameters", "names", "named", "row", "types", "results", "statement")

    def __init__(
        self,
        statement: ClauseElement,
        sql: str,
        parameters: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...],
        row: type[_Row] | None,
        types: tuple[Any, ...],
        *,
        named: bool,
    ) -> None:
        self.statement = statement  # kept alive: the cache is keyed by its id
        self.sql = sql
        self.parameters = parameters
        self.names = tuple(name for name, _default, _process in parameters)
        self.named = named
        self.row = row
        self.types = types  # of the result columns, for the dialect
        #: Each result column's processor, taken from its type once the driver described
        #: the columns (PostgreSQL's numeric processors depend on the column's type code).
        self.results: tuple[Callable[[Any], Any] | None, ...] | None = None

    def processors(
        self, dialect: Dialect, description: Any
    ) -> tuple[Callable[[Any], Any] | None, ...]:
        if self.results is None:
            self.results = tuple(
                kind.result_processor(dialect, column[1])
                for kind, column in zip(self.types, description, strict=True)
            )
        return self.results

    def arguments(self, params: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """The driver's parameters: in order (SQLite's ``?``), or by name (psycopg's
        ``%(name)s``: a bind used twice, as in a ``GROUP BY`` of a selected expression, is
        then one parameter, which PostgreSQL needs to see the two as the same expression)."""
        values = []
        for name, default, process in self.parameters:
            value = params.get(name, default)
            if value is _MISSING:
                raise KeyError(f"no value for the parameter {name!r}")
            # Processors see None too: a JSON column writes None as JSON null, as SQLAlchemy does.
            values.append(value if process is None else process(value))
        if self.named:
            return dict(zip(self.names, values, strict=True))
        return tuple(values)


def _prepare(statement: ClauseElement, keys: Sequence[str], dialect: Dialect) -> _Prepared | None:
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys))
    named = dialect.paramstyle == "pyformat"  # psycopg; SQLite's is positional
    if named:
        if compiled.escaped_bind_names:
            return None  # names the driver would not see as written
        order = list(dict.fromkeys(compiled.bind_names.values()))
    elif not compiled.positional or compiled.positiontup is None:
        return None
    else:
        order = list(compiled.positiontup)
    if compiled.literal_execute_params or compiled.post_compile_params:
        return None  # rendered or expanded at each execution
    if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
        return None  # Python-side column defaults, which SQLAlchemy computes per execution
    binds = {name: bind for bind, name in compiled.bind_names.items()}
    parameters = []
    for name in order:
        bind = binds[name]
        if bind.callable is not None:
            return None
        default = _MISSING if bind.required else bind.effective_value
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        parameters.append((name, default, processor))
    row: type[_Row] | None = None
    types: tuple[Any, ...] = ()
    columns = compiled._result_columns  # (key, name, objects, type) per column, in order
    if columns:
        names = tuple(column[0] for column in columns)
        if len(set(names)) != len(names) or not all(
            isinstance(n, str) and n.isidentifier() and not keyword.iskeyword(n) for n in names
        ):
            return None
        row = _row_class(names)
        types = tuple(column[3].dialect_impl(dialect) for column in columns)
    elif (
        isinstance(statement, TextClause)
        or getattr(statement, "is_select", False)
        or getattr(compiled, "effective_returning", None)
    ):
        return None  # rows whose columns it cannot name (or cannot tell there are none)
    return _Prepared(statement, compiled.string, tuple(parameters), row, types, named=named)


def _prepare_rows(
    statement: ClauseElement, keys: Sequence[str], count: int, dialect: Dialect
) -> _Prepared | None:
    """``statement``, an ``INSERT`` of one row, as one ``INSERT`` of ``count`` rows, the
    parameters of row ``i`` named ``<key>__<i>`` (``_rows_arguments``); None when it is not
    such an insert (or ``_prepare`` would not prepare it)."""
    if not isinstance(statement, Insert) or statement._values or statement._multi_values:
        return None
    if statement._returning or statement.select is not None:
        return None
    columns = statement.table.c
    if not all(key in columns for key in keys):
        return None
    rows = [
        {key: bindparam(f"{key}__{i}", type_=columns[key].type) for key in keys}
        for i in range(count)
    ]
    return _prepare(statement.values(rows), (), dialect)


def _rows_arguments(params: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The parameters of ``_prepare_rows``'s statement for ``params``, one mapping per row."""
    return {f"{key}__{i}": value for i, row in enumerate(params) for key, value in row.items()}


def _row_class(names: tuple[str, ...]) -> type[_Row]:
    base = namedtuple("Row", names)  # type: ignore[misc]
    return type(
        "Row",
        (_Row,),
        {
            "__slots__": (),
            "_fields": names,
            **{name: base.__dict__[name] for name in names},
        },
    )


class DriverStatements:
    """Runs statements on one connection, through the driver where it does the same."""

    __slots__ = ("_connection",)

    #: (id of the statement, its parameter names, the dialect and its parameter style, and
    #: for an insert of several rows in one statement their number, else 0) -> what to run,
    #: or None for SQLAlchemy's path. Shared by every connection of the process: statements
    #: are built once, at import.
    _prepared: dict[tuple[int, frozenset[str], str, str, int], _Prepared | None] = {}

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def execute(
        self, statement: Executable, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> Any:
        """Run ``statement`` with ``params`` (one mapping, or a list of them for one execution
        per mapping, without rows: on psycopg, an insert's rows in one statement); return its
        rows (``first``, ``all``, ``scalar``, iteration; columns as attributes) and
        ``rowcount``.

        :raises sqlalchemy.exc.DBAPIError: the driver refused the statement (the subclass
            SQLAlchemy maps the driver's error to).
        """
        connection = self._connection
        if (
            connection._has_events
            or connection.engine._has_events
            or not connection.in_transaction()  # SQLAlchemy's path begins one (autobegin)
        ):
            return connection.execute(statement, params)
        listed: Sequence[Mapping[str, Any]] = () if isinstance(params, Mapping) else params
        many = not isinstance(params, Mapping)
        first: Mapping[str, Any] = listed[0] if listed else params  # type: ignore[assignment]
        dialect = connection.dialect
        keys = frozenset(first)
        rows = 0  # the rows of a multi-row insert (psycopg), else 0
        if many and dialect.paramstyle == "pyformat":
            if len(listed) == 1:
                params, many = first, False  # one row: one statement, no pipeline
            elif len(listed) <= MAX_ROWS and all(keys == row.keys() for row in listed):
                rows = len(listed)
        cache_key = (id(statement), keys, dialect.name, dialect.paramstyle, rows)
        try:
            prepared = self._prepared[cache_key]
        except KeyError:
            if len(self._prepared) >= MAX_PREPARED:  # not a statement built once, then
                return connection.execute(statement, params)
            assert isinstance(statement, ClauseElement)
            if rows:
                prepared = _prepare_rows(statement, sorted(keys), rows, dialect)
            else:
                prepared = _prepare(statement, sorted(keys), dialect)
            self._prepared[cache_key] = prepared
        if prepared is None or (many and prepared.row is not None):
            return connection.execute(statement, params)
        if rows:
            return self._run(prepared, _rows_arguments(listed), many=False)
        return self._run(prepared, params, many)

    def _run(self, prepared: _Prepared, params: Any, many: bool) -> Rows:
        dialect = self._connection.dialect
        cursor = self._connection.connection.cursor()
        try:
            if many:
                arguments: Any = [prepared.arguments(p) for p in params]
                cursor.executemany(prepared.sql, arguments)
            else:
                arguments = prepared.arguments(params)
                cursor.execute(prepared.sql, arguments)
            rows: list[Any] = []
            if prepared.row is not None:
                make = prepared.row
                results = prepared.processors(dialect, cursor.description)
                for raw in cursor.fetchall():
                    rows.append(
                        make(
                            value if process is None else process(value)
                            for process, value in zip(results, raw, strict=True)
                        )
                    )
            return Rows(rows, cursor.rowcount)
        except dialect.loaded_dbapi.Error as exc:
            gone = dialect.is_disconnect(exc, self._connection.connection.dbapi_connection, cursor)
            if gone:
                # As SQLAlchemy's own path does: every pooled connection of the engine is
                # suspect once the server went away, and this one is thrown away.
                connection = self._connection
                connection.engine.pool._invalidate(connection.connection, exc)
                connection.invalidate(exc)
            raise DBAPIError.instance(
                prepared.sql,
                arguments,
                exc,
                dialect.loaded_dbapi.Error,
                connection_invalidated=gone,
                dialect=dialect,
            ) from exc
        finally:
            cursor.close()
