"""PostgreSQL: a statement prepared once per connection and run straight on libpq.

The pull's one statement (``store.pull``) is the desk's hottest write. Run through psycopg's
cursor it cost more Python than the statement cost the server's planner-free execution:
the cursor, the adaptation of every value, the wait loop around a generator, the autocommit
switch before and after (``benchmarks/pull.py``: ~210 us of client CPU per pull against ~70
for the bare claim). Here the statement is prepared once on the connection (``PREPARE``, a
name of our own, never one of psycopg's ``_pg3_*``) and each run is one ``PQexecPrepared``
with the values as text: one round trip, no BEGIN (run on an idle connection, the statement
is its own transaction), nothing for psycopg to track.

Only for statements whose values are ints, text and datetimes and whose rows are ints and
text (what the pull sends and reads). Imported only on PostgreSQL: a SQLite desk never loads
psycopg.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any, NoReturn

from psycopg import errors as pg_errors
from psycopg.pq import ConnStatus, DiagnosticField, ExecStatus, TransactionStatus

from cxdesk.store.driver_sql import Compiled

_PREPARED = "cxdesk_prepared"
"""Key in the pooled connection's ``info``: (libpq connection, encoding, names prepared)."""
_PYFORMAT = re.compile(r"%\((\w+)\)s|%%")
_INT_TYPES = frozenset({20, 21, 23})
"""int8, int2, int4"""
_ROWS = ExecStatus.TUPLES_OK
_DONE = ExecStatus.COMMAND_OK
_NO_SUCH_STATEMENT = b"26000"
"""invalid_sql_statement_name: the server lost it (DEALLOCATE ALL, DISCARD ALL)"""
_ALREADY_PREPARED = b"42P05"
IDLE = TransactionStatus.IDLE


class Prepared:
    """``compiled`` (psycopg's ``%(name)s`` paramstyle) as a numbered statement, by name."""

    __slots__ = ("fixed", "name", "names", "sql")

    def __init__(self, compiled: Compiled):
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) is None:  # %% is a literal %
                return "%"
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        self.sql = _PYFORMAT.sub(number, compiled.sql)
        self.names = tuple(names)
        self.fixed = compiled.fixed
        self.name = ("cxdesk_" + hashlib.sha1(self.sql.encode()).hexdigest()[:16]).encode()

    def run(self, raw: Any, **values: Any) -> list[tuple[Any, ...]]:
        """Run on the pooled connection ``raw`` (idle: the statement commits on its own);
        its rows. A failure raises psycopg's error for it, as a cursor would."""
        pgconn, encoding, prepared = _state(raw)
        params = {**self.fixed, **values}
        args = [_text(params[name], encoding) for name in self.names]
        if self.name not in prepared:
            self._prepare(raw, pgconn, encoding)
            prepared.add(self.name)
        result = pgconn.exec_prepared(self.name, args)
        if result.status not in (_ROWS, _DONE):
            if result.error_field(DiagnosticField.SQLSTATE) != _NO_SUCH_STATEMENT:
                _fail(raw, pgconn, result, encoding)
            self._prepare(raw, pgconn, encoding)  # lost on the server: once more
            result = pgconn.exec_prepared(self.name, args)
            if result.status not in (_ROWS, _DONE):
                _fail(raw, pgconn, result, encoding)
        kinds = [result.ftype(column) in _INT_TYPES for column in range(result.nfields)]
        return [
            tuple(
                _value(result.get_value(row, column), number, encoding)
                for column, number in enumerate(kinds)
            )
            for row in range(result.ntuples)
        ]

    def _prepare(self, raw: Any, pgconn: Any, encoding: str) -> None:
        result = pgconn.prepare(self.name, self.sql.encode(encoding))
        if result.status != _DONE and (
            result.error_field(DiagnosticField.SQLSTATE) != _ALREADY_PREPARED
        ):
            _fail(raw, pgconn, result, encoding)


def _fail(raw: Any, pgconn: Any, result: Any, encoding: str) -> NoReturn:
    """Raise psycopg's error for ``result``; a connection lost (no SQLSTATE then) is an
    OperationalError, and the pool is told to drop it, as SQLAlchemy does for a disconnect."""
    if pgconn.status == ConnStatus.BAD:
        raw.invalidate()
        message = result.error_message.decode(encoding, "replace").strip()
        raise pg_errors.OperationalError(message or "the connection to the server was lost")
    raise pg_errors.error_from_result(result, encoding=encoding)


def _state(raw: Any) -> tuple[Any, str, set[bytes]]:
    """The connection's libpq handle, its encoding and the names prepared on it (a new
    handle after a reconnect starts with none)."""
    driver = raw.driver_connection
    state = raw.info.get(_PREPARED)
    if state is None or state[0] is not driver.pgconn:
        state = raw.info[_PREPARED] = (driver.pgconn, driver.info.encoding, set())
    return state


def _text(value: Any, encoding: str) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, datetime):
        return value.isoformat().encode()
    return str(value).encode(encoding)


def _value(data: bytes | None, number: bool, encoding: str) -> Any:
    if data is None:
        return None
    return int(data) if number else data.decode(encoding)
