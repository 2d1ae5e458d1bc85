"""Statements run straight on a pooled driver connection: compiled once per dialect, then each
call is a cursor ``execute`` with its values, no SQLAlchemy on the way (the pull's hot path,
``store.pull``: building and compiling the Core statement cost more than running it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, cast

from sqlalchemy import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel.sql.sqltypes import UTCDateTime

from cxdesk.store.db import driver_error


@dataclass(frozen=True)
class Compiled:
    """A Core statement compiled once for one dialect, run straight on a driver cursor."""

    sql: str
    fixed: dict[str, Any]
    """The statement's own literals (an Enum as its value), and None for each ``given``."""
    order: tuple[str, ...] | None
    """Bind names in order, for a positional paramstyle (SQLite's ``?``); else None."""
    operational_error: type[Exception]
    """The driver's OperationalError (locked, read-only, server gone): a clear line."""
    given: frozenset[str] = frozenset()
    """The binds without a value in the statement: each call's."""
    processors: dict[str, Any] = field(default_factory=dict)
    """Per bind name, its column type's bind processor (what SQLAlchemy would apply to a
    value: ``store.prepared`` does; ``run`` hands values over as they are)."""

    @classmethod
    def of(
        cls, statement: ClauseElement, dialect: Dialect, *, column_keys: list[str] | None = None
    ) -> Compiled:
        """``statement`` compiled for ``dialect``; ``column_keys``: for an ``insert(table)``
        without values, the columns each call gives."""
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=column_keys))
        # The statement's literals, once; the binds without a value are each call's.
        given = {name: None for name, bind in compiled.binds.items() if bind.required}
        fixed = {
            name: value.value if isinstance(value, Enum) else value
            for name, value in (compiled.construct_params(given) or {}).items()
        }
        order = tuple(compiled.positiontup or ()) if compiled.positional else None
        return cls(
            compiled.string,
            fixed,
            order,
            dialect.loaded_dbapi.OperationalError,
            frozenset(given),
            {
                name: _quick(processor, compiled.binds[name].type, dialect)
                for name, processor in compiled._bind_processors.items()
            },
        )

    def run(self, cursor: Any, **values: Any) -> list[Any]:
        params = {**self.fixed, **values}
        cursor.execute(self.sql, tuple(params[n] for n in self.order) if self.order else params)
        return list(cursor.fetchall())


_SAMPLE = datetime(2026, 1, 2, 3, 4, 5, 60708, tzinfo=UTC)


def _quick(processor: Any, kind: Any, dialect: Dialect) -> Any:
    """``processor``, or a quicker one giving the same text: an aware time on SQLite is
    SQLAlchemy's ``YYYY-MM-DD HH:MM:SS.ffffff`` of it in UTC, which ``isoformat`` writes in a
    third of the time (a check-in writes 33 times). Anything but a ``datetime`` in UTC, and
    any other storage format (checked once, on a sample), goes through ``processor``."""
    if dialect.name != "sqlite" or not isinstance(kind, UTCDateTime):
        return processor

    def quick(value: Any) -> Any:
        if type(value) is datetime and value.tzinfo is UTC:
            return value.isoformat(" ", "microseconds")[:26]
        return processor(value)

    return quick if quick(_SAMPLE) == processor(_SAMPLE) else processor


def run_sql(raw: Any, cursor: Any, *statements: Compiled, **values: Any) -> list[Any]:
    """Statements in one transaction (the last one's rows); a driver failure becomes one
    clear line."""
    rows: list[Any] = []
    try:
        for statement in statements:
            rows = statement.run(cursor, **values)
        raw.commit()
    except BaseException as exc:
        raw.rollback()
        if isinstance(exc, statements[0].operational_error):
            raise driver_error(exc) from exc
        raise
    return rows
