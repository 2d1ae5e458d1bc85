"""Statements of the hot write paths, compiled once per dialect and run on the session's own
driver connection, inside its transaction.

A check-in runs some twenty statements; through SQLAlchemy each one builds its cache key,
looks its compiled form up, processes its parameters and sets up a result: several times the
cost of the statement itself (``benchmarks/checkin.py``). A ``Prepared`` statement is a Core
statement compiled once for each dialect it meets, its parameters converted by the column
types' own bind processors (the very values SQLAlchemy would send: JSON text, datetimes as
SQLite stores them), then handed to the driver's cursor. What SQLAlchemy gives around a
statement is kept: ``before_cursor_execute`` listeners hear it (the statement counts of the
tests, the TUI tests' "no SQL on the event loop" check) and a driver error is raised as
SQLAlchemy's (``IntegrityError``, ``OperationalError``), so callers handle it as before.

Rows read come back as the driver gives them (no result processing): callers read plain
integers and text, or pass times through ``tickets._aware``.

``ManyRows`` writes many new rows of a table at once: ``executemany`` on SQLite, one
``INSERT ... SELECT * FROM unnest(arrays)`` on PostgreSQL, where each statement is a round trip.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect, String, Table, TypeDecorator, exc, insert, text
from sqlalchemy.sql import ClauseElement
from sqlmodel import Session

from cxdesk.store.driver_sql import Compiled


@dataclass(frozen=True)
class _Form:
    """One statement compiled for one dialect."""

    sql: str
    fixed: dict[str, Any]
    """The statement's own literals, processed once."""
    processors: dict[str, Any]
    order: tuple[str, ...] | None
    """Bind names in order, for a positional paramstyle (SQLite's ``?``); else None."""
    positions: tuple[tuple[str, Any, Any, bool], ...] = ()
    """For a positional paramstyle, per place: its bind name, its processor (or None), its
    fixed value (``_GIVEN``: each call's) and whether the processor is called for NULL (not
    when it leaves NULL as it is)."""


_GIVEN = object()
_DRIVER_KEY = "cxdesk_driver_connection"
"""In ``session.info``: the transaction, its Connection and driver connection, looked up once."""


class Prepared:
    """A Core statement run on the driver's cursor of a session's transaction.

    ``keys``: for an ``insert(table)`` without values, the columns each call gives."""

    def __init__(self, statement: ClauseElement, *, keys: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.keys = list(keys) if keys is not None else None
        self._forms: dict[str, _Form] = {}

    def _form(self, dialect: Dialect) -> _Form:
        form = self._forms.get(dialect.name)
        if form is None:
            compiled = Compiled.of(self.statement, dialect, column_keys=self.keys)
            processors = compiled.processors
            fixed = {
                name: value if (processor := processors.get(name)) is None else processor(value)
                for name, value in compiled.fixed.items()
                if name not in compiled.given
            }
            positions = tuple(
                (name, processors.get(name), fixed.get(name, _GIVEN),
                 _null_too(processors.get(name)))
                for name in compiled.order or ()
            )  # fmt: skip
            form = _Form(compiled.sql, fixed, processors, compiled.order, positions)
            self._forms[dialect.name] = form
        return form

    def _parameters(self, form: _Form, values: Mapping[str, Any]) -> Any:
        if form.order is not None:
            placed: list[Any] = []
            for name, processor, fixed, null_too in form.positions:
                if fixed is _GIVEN:
                    value = values[name]
                    if processor is None or (value is None and not null_too):
                        placed.append(value)
                    else:
                        placed.append(processor(value))
                else:
                    placed.append(fixed)
            return tuple(placed)
        processors = form.processors
        params = dict(form.fixed)
        for name, value in values.items():
            processor = processors.get(name)
            params[name] = value if processor is None else processor(value)
        return params

    def _run(self, session: Session, values: Any, many: bool) -> Any:
        if not session._is_clean():  # as the session's own statements do: changes first
            session._autoflush()
        # The transaction's connections, as ``_connections`` keeps them (inline: a check-in
        # runs some twenty statements).
        found = session.info.get(_DRIVER_KEY)
        if found is not None and found[0]() is session._transaction is not None:
            connection, driver = found[1], found[2]
        else:
            connection, driver = _connections(session)
        dialect = connection.dialect
        form = self._forms.get(dialect.name) or self._form(dialect)
        if many:
            parameters = [self._parameters(form, row) for row in values]
        else:
            parameters = self._parameters(form, values)
        cursor = driver.cursor()
        if connection.dispatch.before_cursor_execute:
            connection.dispatch.before_cursor_execute(
                connection, cursor, form.sql, parameters, None, many
            )
        try:
            if many:
                cursor.executemany(form.sql, parameters)
            else:
                cursor.execute(form.sql, parameters)
        except dialect.loaded_dbapi.Error as error:
            raise exc.DBAPIError.instance(
                form.sql, parameters, error, dialect.loaded_dbapi.Error, dialect=dialect
            ) from error
        return cursor

    def execute(self, session: Session, values: Mapping[str, Any] | None = None) -> int:
        """Run it once; the rows it changed."""
        cursor = self._run(session, values or {}, False)
        count: int = cursor.rowcount
        cursor.close()
        return count

    def execute_many(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run it once per row of values (the driver's ``executemany``)."""
        if rows:
            self._run(session, rows, True).close()

    def rows(self, session: Session, values: Mapping[str, Any] | None = None) -> list[Any]:
        """Run it once; every row it returns, as the driver gives them."""
        cursor = self._run(session, values or {}, False)
        found: list[Any] = cursor.fetchall()  # a new list (sqlite3, psycopg)
        cursor.close()
        return found

    def scalar(self, session: Session, values: Mapping[str, Any] | None = None) -> Any:
        """Run it once; the first column of its first row (None: no row)."""
        found = self.rows(session, values)
        return found[0][0] if found else None


def _connections(session: Session) -> tuple[Any, Any]:
    """The session's Connection and driver connection in its innermost transaction, looked
    up once per transaction: ``session.connection()`` begins it (the BEGIN, or the SAVEPOINT
    of a ``begin_nested()``, which the ORM emits only when the nested transaction first asks
    for a connection)."""
    transaction = _innermost(session)
    found = session.info.get(_DRIVER_KEY)
    if found is not None and transaction is not None and found[0]() is transaction:
        return found[1], found[2]
    connection = session.connection()
    driver = connection.connection.dbapi_connection
    # The transaction by a weak reference: held, it refers back to the session, and the
    # session with all it holds became a reference cycle left for the cycle collector.
    session.info[_DRIVER_KEY] = (weakref.ref(_innermost(session)), connection, driver)
    return connection, driver


def _innermost(session: Session) -> Any:
    """The session's innermost transaction: its ``begin_nested()`` one, else its own (one
    attribute read: ``get_nested_transaction() or get_transaction()`` made a third of the
    lookup's cost)."""
    return session._transaction


def _null_too(processor: Any) -> bool:
    """Whether ``processor`` must be called for NULL too (a JSON column makes it the JSON
    ``null``; most types leave it as it is)."""
    if processor is None:
        return False
    try:
        return processor(None) is not None
    except (TypeError, ValueError, AttributeError):
        return True


class ManyRows:
    """New rows of one table written at once: the driver's ``executemany`` (SQLite, in
    process: no round trip to save), on PostgreSQL one ``INSERT ... SELECT`` from an array per
    column (psycopg's ``executemany`` sends a message per row: a check-in's workflow runs are
    ten). The values are those the rows would be given, converted by the columns' types."""

    def __init__(self, table: Table, keys: Sequence[str]) -> None:
        self.table = table
        self.keys = list(keys)
        self.rows = Prepared(insert(table), keys=self.keys)
        self._arrays: dict[str, Prepared] = {}

    def write(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        dialect = _connections(session)[0].dialect
        if dialect.name != "postgresql":
            self.rows.execute_many(session, rows)
        else:
            statement = self._arrays.get(dialect.name)
            if statement is None:
                statement = self._arrays[dialect.name] = Prepared(text(self.arrays_sql(dialect)))
            statement.execute(session, self.arrays(dialect, rows))

    def arrays(self, dialect: Dialect, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        """The values of ``rows``, one list per column (converted by its type), for
        ``arrays_sql``."""
        processors = self.rows._form(dialect).processors
        return {
            key: [row[key] if (p := processors.get(key)) is None else p(row[key]) for row in rows]
            for key in self.keys
        }

    def arrays_sql(self, dialect: Dialect) -> str:
        """PostgreSQL's ``INSERT ... SELECT * FROM unnest(...)`` of one array per column,
        each named as its column (``:name``, a ``text`` statement)."""
        preparer = dialect.identifier_preparer
        columns = [self.table.c[key] for key in self.keys]
        return (
            f"INSERT INTO {preparer.format_table(self.table)} "
            f"({', '.join(preparer.format_column(c) for c in columns)}) "
            f"SELECT * FROM unnest({', '.join(array_of(c, dialect) for c in columns)})"
        )


def array_of(column: Any, dialect: Dialect, name: str | None = None) -> str:
    """A bind ``:name`` (default: the column's) cast to an array of ``column``'s type.

    A string type without its length, as SQLAlchemy's psycopg dialect casts (its issue 9511):
    a cast to ``VARCHAR(100)`` cuts a longer value silently, where the insert of the value
    itself raises ``DataError``."""
    return f"CAST(:{name or column.key} AS {type_sql(column, dialect)}[])"


def type_sql(column: Any, dialect: Dialect) -> str:
    """``column``'s type as a cast names it (``array_of``'s, a value's): a string type
    without its length, so a value too long is refused, not cut."""
    kind = column.type
    if isinstance(kind, TypeDecorator):  # as the type compiler does: the type it stands for
        kind = kind.type_engine(dialect)
    if isinstance(kind, String) and kind.length is not None:
        kind = copy.copy(kind)
        kind.length = None
    return str(kind.compile(dialect=dialect))
