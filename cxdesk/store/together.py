"""A new row and what comes with it, written by as few statements as the database allows.

On PostgreSQL each statement is a round trip, and a check-in wrote its survey response, then
the response's log line, then took its ticket's id, wrote the ticket, the ticket's ordered
data and the ticket's log line, one after the other. Here the rows that go together are one
statement of data-modifying ``WITH`` parts: the response with its line (the line names the
response's id); the ticket, its id taken from its sequence by the statement, its key and
search text made around the id there, with its data and its line. Every part runs to its end
whether or not the statement reads it, and the foreign keys are checked once the statement is
done, when all its rows are there. SQLite has no such ``WITH``; it writes the ticket taking
its id in its one ``INSERT`` (``new_row_around_id``), the rest one statement each (in process:
no round trip to save).

Each value is converted by its column type's own bind processor and, on PostgreSQL, cast to
the column's type (as SQLAlchemy's psycopg dialect casts a bind): the very values a Core
``INSERT`` of the row would send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect, Table, insert, text
from sqlmodel import Session

from cxdesk.store.prepared import ManyRows, Prepared, array_of, type_sql

_STATEMENTS: dict[tuple[str, ...], Prepared] = {}
"""Each statement, built once per dialect and shape (tables, columns, where the new id goes)."""
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
    *,
    table: Table,
    row: Mapping[str, Any],
    events: Table,
    line: Mapping[str, Any],
    into: str | None = None,
    around_id: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[int, int]:
    """Write the new row ``row`` of ``table`` (its id given by the database) and the log line
    ``line`` that names the new id: as its column ``into`` (a survey response's line), or
    in ``around_id``'s text columns, each the id between a head and a tail (``outbox #12``);
    (row id, line id)."""
    dialect = session.get_bind().dialect
    around_id = around_id or {}
    names = [name for name in row if name != "id"]
    made = list(around_id)
    line_names = [name for name in line if name not in ("id", into, *made)]
    given = [into] if into else []
    shape = (dialect.name, "row_with_line", table.name, ",".join(names), ",".join(line_names),
             ",".join(given), ",".join(made))  # fmt: skip
    statement = _STATEMENTS.get(shape)
    if statement is None:
        preparer = dialect.identifier_preparer
        written = f"{_insert_values(table, dialect, names, 'r_')} RETURNING {preparer.quote('id')}"
        chosen = [_casts(events, dialect, line_names, "e_"), *_made_around(made, "written.id"),
                  *["written.id" for _ in given]]  # fmt: skip
        statement = _STATEMENTS[shape] = Prepared(text(
            f"WITH written AS ({written}) "
            f"INSERT INTO {preparer.format_table(events)} "
            f"({_columns(events, dialect, [*line_names, *made, *given])}) "
            f"SELECT {', '.join(chosen)} FROM written "
            f"RETURNING {preparer.quote('id')}, (SELECT id FROM written)"
        ))  # fmt: skip
    values = bound(table, dialect, {name: row[name] for name in names}, "r_")
    values |= bound(events, dialect, {name: line[name] for name in line_names}, "e_")
    values |= _heads_and_tails(around_id)
    ((line_id, row_id),) = statement.rows(session, values)
    return row_id, line_id


def _made_around(names: Sequence[str], new_id: str) -> list[str]:
    """Each of ``names``' values made in SQL: its head, the new id ``new_id``, its tail."""
    return [
        f"CAST(:h_{name} AS TEXT) || CAST({new_id} AS TEXT) || CAST(:t_{name} AS TEXT)"
        for name in names
    ]


def _heads_and_tails(around_id: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """The binds of ``_made_around``: each name's head and tail."""
    values: dict[str, str] = {}
    for name, (head, tail) in around_id.items():
        values |= {f"h_{name}": head, f"t_{name}": tail}
    return values


def new_row_with_many_and_line(
    session: Session,
    *,
    table: Table,
    row: Mapping[str, Any],
    around_id: Mapping[str, tuple[str, str]],
    many: ManyRows,
    rows: Sequence[Mapping[str, Any]],
    events: Table,
    line: Mapping[str, Any],
    into: str,
) -> tuple[int, int]:
    """Write a new row of ``table``, its id taken from its sequence by the statement itself,
    with the new rows ``rows`` of ``many``'s table (none: nothing) and the log line ``line``,
    each of whose column ``into`` is the new id; (the new id, the line's id).

    ``row``: the values of the new row's columns but its id and ``around_id``'s, each of
    which is text made of the id between a head and a tail (a ticket's key ``EXP-12``)."""
    dialect = session.get_bind().dialect
    names, made = _new_row_names(row, around_id)
    line_names = [name for name in line if name not in ("id", into)]
    many_names = [key for key in many.keys if key != into]
    shape = (
        dialect.name, "new_row_with_many_and_line", table.name, ",".join(names),
        ",".join(made), many.table.name, ",".join(many_names), ",".join(line_names), into,
    )  # fmt: skip
    statement = _STATEMENTS.get(shape)
    if statement is None:
        preparer = dialect.identifier_preparer
        sequence = f"pg_get_serial_sequence('{table.name}', 'id')"
        arrays = ", ".join(array_of(many.table.c[key], dialect, f"m_{key}") for key in many_names)
        written = _new_row_insert(table, dialect, names, made, "new", cast=True)
        statement = _STATEMENTS[shape] = Prepared(text(
            f"WITH new AS (SELECT nextval({sequence}) AS id), "
            f"written AS ({written}), "
            f"many AS (INSERT INTO {preparer.format_table(many.table)} "
            f"({_columns(many.table, dialect, [into, *many_names])}) "
            f"SELECT new.id, rows.* FROM new, unnest({arrays}) AS rows) "
            f"INSERT INTO {preparer.format_table(events)} "
            f"({_columns(events, dialect, [*line_names, into])}) "
            f"SELECT {_casts(events, dialect, line_names, 'e_')}, new.id FROM new "
            f"RETURNING (SELECT id FROM new), {preparer.quote('id')}"
        ))  # fmt: skip
    values = _new_row_values(table, dialect, row, names, around_id)
    arrays_of = many.arrays(dialect, [{**each, into: 0} for each in rows])
    values |= {f"m_{key}": arrays_of[key] for key in many_names}
    values |= bound(events, dialect, {name: line[name] for name in line_names}, "e_")
    ((new_id, line_id),) = statement.rows(session, values)
    return new_id, line_id


def new_row_around_id(
    session: Session,
    *,
    table: Table,
    row: Mapping[str, Any],
    around_id: Mapping[str, tuple[str, str]],
    next_id: str,
) -> int:
    """SQLite: write a new row of ``table`` whose id is ``next_id`` (SQL giving the next id)
    and whose ``around_id`` columns are made around it, as ``new_row_with_many_and_line``
    writes it on PostgreSQL; its id. One statement where taking the id first was two."""
    dialect = session.get_bind().dialect
    names, made = _new_row_names(row, around_id)
    shape = (dialect.name, "new_row_around_id", table.name, ",".join(names), ",".join(made),
             next_id)  # fmt: skip
    statement = _STATEMENTS.get(shape)
    if statement is None:
        source = f"({next_id}) AS new"
        written = _new_row_insert(table, dialect, names, made, source, cast=False)
        quoted_id = dialect.identifier_preparer.quote("id")
        statement = _STATEMENTS[shape] = Prepared(text(f"{written} RETURNING {quoted_id}"))
    values = _new_row_values(table, dialect, row, names, around_id)
    new_id: int = statement.scalar(session, values)
    return new_id


def _new_row_names(
    row: Mapping[str, Any], around_id: Mapping[str, tuple[str, str]]
) -> tuple[list[str], list[str]]:
    """A new row's columns given as values (not its id, not those made around it), and those
    made around its id."""
    return [name for name in row if name not in around_id and name != "id"], list(around_id)


def _new_row_insert(
    table: Table, dialect: Dialect, names: Sequence[str], made: Sequence[str], source: str,
    *, cast: bool,
) -> str:  # fmt: skip
    """The ``INSERT ... SELECT`` of a new row whose id is ``new.id`` of ``source``, its
    ``made`` columns made around it, its ``names`` columns from binds ``r_`` (``cast``: each
    cast to its column's type, as PostgreSQL needs)."""
    given = _casts(table, dialect, names, "r_") if cast else ", ".join(f":r_{n}" for n in names)
    return (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
        f"({_columns(table, dialect, ['id', *made, *names])}) "
        f"SELECT {', '.join(['new.id', *_made_around(made, 'new.id'), given])} FROM {source}"
    )


def _new_row_values(
    table: Table,
    dialect: Dialect,
    row: Mapping[str, Any],
    names: Sequence[str],
    around_id: Mapping[str, tuple[str, str]],
) -> dict[str, Any]:
    """The binds of ``_new_row_insert``."""
    values = bound(table, dialect, {name: row[name] for name in names}, "r_")
    return values | _heads_and_tails(around_id)
