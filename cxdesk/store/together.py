"""PostgreSQL: a new row and what comes with it written by one statement.

On PostgreSQL each statement is a round trip, and a check-in wrote its survey response, then
the response's log line, then its ticket, the ticket's ordered data and the ticket's log
line, one after the other. Here the rows that go together are one statement of
data-modifying ``WITH`` parts: the response with its line (the line names the response's
id), the ticket with its data and its line (the ticket's id is taken first, for its key).
Every part runs to its end whether or not the statement reads it, and the foreign keys are
checked once the statement is done, when all its rows are there.

Each value is cast to its column's type (as SQLAlchemy's psycopg dialect casts a bind) and
converted by the column type's own bind processor first: the very values a Core ``INSERT``
of the row would send. SQLite writes the rows one statement each, as before (in process,
there is no round trip to save).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect, Table, insert, text
from sqlmodel import Session

from cxdesk.store.prepared import ManyRows, Prepared, array_of, type_sql

_STATEMENTS: dict[tuple[str, ...], Prepared] = {}
"""Each statement's text, built once per shape (tables, where the new id goes)."""
_PROCESSORS: dict[tuple[str, str], dict[str, Any]] = {}
"""Per (table, dialect): its columns' bind processors."""


def _processors(table: Table, dialect: Dialect) -> dict[str, Any]:
    found = _PROCESSORS.get((table.name, dialect.name))
    if found is None:
        keys = [column.name for column in table.columns]
        found = Prepared(insert(table), keys=keys)._form(dialect).processors
        _PROCESSORS[(table.name, dialect.name)] = found
    return found


def bound(table: Table, dialect: Dialect, values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """``values`` of ``table``'s columns, each converted by its type, keyed ``prefix`` + name."""
    processors = _processors(table, dialect)
    return {
        prefix + name: value if (process := processors.get(name)) is None else process(value)
        for name, value in values.items()
    }


def _casts(table: Table, dialect: Dialect, names: Sequence[str], prefix: str) -> str:
    return ", ".join(
        f"CAST(:{prefix}{name} AS {type_sql(table.c[name], dialect)})" for name in names
    )


def _columns(table: Table, dialect: Dialect, names: Sequence[str]) -> str:
    preparer = dialect.identifier_preparer
    return ", ".join(preparer.format_column(table.c[name]) for name in names)


def _insert_values(table: Table, dialect: Dialect, names: Sequence[str], prefix: str) -> str:
    return (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
        f"({_columns(table, dialect, names)}) VALUES ({_casts(table, dialect, names, prefix)})"
    )


def row_with_line(
    session: Session,
    table: Table,
    row: Mapping[str, Any],
    events: Table,
    line: Mapping[str, Any],
    *,
    into: str,
) -> tuple[int, int]:
    """Write the new row ``row`` of ``table`` (its id given by the database) and the log line
    ``line`` whose column ``into`` is the new row's id; (row id, line id)."""
    dialect = session.get_bind().dialect
    names = [name for name in row if name != "id"]
    line_names = [name for name in line if name not in ("id", into)]
    shape = ("row_with_line", table.name, ",".join(names), ",".join(line_names), into)
    statement = _STATEMENTS.get(shape)
    if statement is None:
        preparer = dialect.identifier_preparer
        written = f"{_insert_values(table, dialect, names, 'r_')} RETURNING {preparer.quote('id')}"
        statement = _STATEMENTS[shape] = Prepared(text(
            f"WITH written AS ({written}) "
            f"INSERT INTO {preparer.format_table(events)} "
            f"({_columns(events, dialect, [*line_names, into])}) "
            f"SELECT {_casts(events, dialect, line_names, 'e_')}, written.id FROM written "
            f"RETURNING {preparer.quote('id')}, (SELECT id FROM written)"
        ))  # fmt: skip
    values = bound(table, dialect, {name: row[name] for name in names}, "r_")
    values |= bound(events, dialect, {name: line[name] for name in line_names}, "e_")
    ((line_id, row_id),) = statement.rows(session, values)
    return row_id, line_id


def row_with_many_and_line(
    session: Session,
    table: Table,
    row: Mapping[str, Any],
    many: ManyRows,
    rows: Sequence[Mapping[str, Any]],
    events: Table,
    line: Mapping[str, Any],
) -> int:
    """Write the new row ``row`` of ``table`` (its id given), the new rows ``rows`` of
    ``many``'s table (none: nothing) and the log line ``line``: the line's id."""
    dialect = session.get_bind().dialect
    names, line_names = list(row), [name for name in line if name != "id"]
    shape = ("row_with_many_and_line", table.name, ",".join(names), many.table.name,
             ",".join(many.keys), ",".join(line_names))  # fmt: skip
    statement = _STATEMENTS.get(shape)
    if statement is None:
        arrays = ", ".join(array_of(many.table.c[key], dialect, f"m_{key}") for key in many.keys)
        preparer = dialect.identifier_preparer
        statement = _STATEMENTS[shape] = Prepared(text(
            f"WITH written AS ({_insert_values(table, dialect, names, 'r_')}), "
            f"many AS (INSERT INTO {preparer.format_table(many.table)} "
            f"({_columns(many.table, dialect, many.keys)}) SELECT * FROM unnest({arrays})) "
            f"{_insert_values(events, dialect, line_names, 'e_')} "
            f"RETURNING {preparer.quote('id')}"
        ))  # fmt: skip
    values = bound(table, dialect, row, "r_")
    values |= {f"m_{key}": column for key, column in many.arrays(dialect, rows).items()}
    values |= bound(events, dialect, {name: line[name] for name in line_names}, "e_")
    line_id: int = statement.scalar(session, values)
    return line_id
