"""Engine factory and transactions for SQLite and PostgreSQL.

SQLite: WAL, foreign keys, a busy timeout, and every write transaction opened with
``BEGIN IMMEDIATE`` so a read-then-write operation takes the write lock up front instead of
failing with SQLITE_BUSY half way (see PITFALLS.md). Read-only sessions (``read_session``)
use a plain deferred ``BEGIN`` so screens never block writers.

The WAL is copied back into the database file (a checkpoint) by the delivery worker's every
pass (``checkpoint``), off any keystroke's path; a connection checkpoints by itself only once
the WAL has grown to ``AUTOCHECKPOINT_PAGES`` (a desk with no worker running), instead of
SQLite's default of every 1,000 pages: at that rate about one pull in a hundred paid for a
checkpoint with its fsyncs (benchmarks/pull.py, p99).

PostgreSQL: READ COMMITTED; operations lock the rows they change (``FOR UPDATE``) and pulls
use ``FOR UPDATE SKIP LOCKED``. The pool checks a connection before handing it out, but pings
only one idle for a while or that its server may have closed (``_needs_ping``).
"""

from __future__ import annotations

import select
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    InvalidatePoolError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session

from cxdesk.errors import Conflict, DeskError
from cxdesk.i18n import _
from cxdesk.locations import create_private_file
from cxdesk.store.lean import BUSY_TIMEOUT_MS, driver_away, errors_behind
from cxdesk.store.lean import driver_error as driver_error  # the lean reader's too

READ_ONLY_OPTION = "cxdesk_read_only"
AUTOCHECKPOINT_PAGES = 10_000
"""About 40 MB of WAL (4 KB pages): a backstop; the worker checkpoints long before."""
SQLITE_PRAGMAS = (
    "foreign_keys=ON",
    f"busy_timeout={BUSY_TIMEOUT_MS}",
    "synchronous=NORMAL",
    f"wal_autocheckpoint={AUTOCHECKPOINT_PAGES}",
)
"""Every cxdesk connection to a SQLite desk, after the switch to WAL (``configure_sqlite``)."""
_WAL_RETRY_S = 0.01
STALE_WRITE = "Someone changed this ticket while it was being saved; reload and try again"
"""A ticket's ORM write found another version than it read (``models.TICKET_VERSION``)."""


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Build the engine for a database URL (``sqlite:///path`` or ``postgresql://...``).

    A bare ``postgresql://`` URL uses psycopg 3. A SQLite file that does not exist yet is
    created owner-only (0600, its missing folders 0700).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DeskError(_("Not a database URL: {url!r}").format(url=url)) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "postgresql":
        return _postgres_engine(parsed, **kwargs)
    raise DeskError(
        _("Unsupported database {drivername!r}: use sqlite or postgresql").format(
            drivername=parsed.drivername
        )
    )


def _sqlite_engine(url: Any, **kwargs: Any) -> Engine:
    database = url.database
    if database and database != ":memory:" and not url.query.get("uri"):
        # SQLite would create the file 0644 (less the umask) and gives the WAL and SHM files
        # the database file's mode: made here first, owner-only, all three are.
        create_private_file(Path(database).expanduser())
    engine = create_engine(
        url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}, **kwargs
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (the documented recipe).
        dbapi_connection.isolation_level = None
        configure_sqlite(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        _begin_sqlite(connection, "BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: Any, **kwargs: Any) -> Engine:
    """A pool that checks a connection before handing it out, as ``pool_pre_ping`` does, but
    without a round trip when the connection was used a moment ago and its socket is quiet
    (``_needs_ping``): a burst of transactions (check-ins at a desk, a worker's pass) skips
    the ping that was one round trip each."""
    engine = create_engine(url, **kwargs)
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_KEY] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if not _needs_ping(dbapi_connection, record.info.get(_RETURNED_KEY)):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                # As the pre-ping does: the server went away, so every connection of the
                # pool is thrown away, and this checkout tries again on a new one.
                raise InvalidatePoolError() from error
            raise

    return engine


_RETURNED_KEY = "cxdesk_returned"
"""In a pooled connection's ``info``: ``time.monotonic()`` when it was last given back."""
PING_AFTER_IDLE_S = 2.0
"""A pooled connection idle longer than this is pinged before it is used again."""


def _needs_ping(connection: Any, returned: float | None) -> bool:
    """Whether a psycopg connection the pool is about to hand out must be asked first.

    Yes when it lay idle longer than ``PING_AFTER_IDLE_S``: a network device that dropped it
    without a word (a load balancer's or NAT's idle timeout, a host gone) sent nothing, and
    only a write finds that out. Yes when it is closed, or its socket has something to read:
    a connection at rest has nothing to read (its every answer was read with its statement),
    but a server that ends it (a restart, ``pg_terminate_backend``, an idle timeout) sends its
    reason and closes the socket. Otherwise (used a moment ago, quiet, or new: ``returned``
    None) no: the ping would be a round trip on every transaction."""
    if returned is not None and time.monotonic() - returned > PING_AFTER_IDLE_S:
        return True
    if connection.closed or connection.broken:
        return True
    poller = select.poll()  # not select.select: no limit on the descriptor's number
    poller.register(connection.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def _begin_sqlite(connection: Any, begin: str) -> None:
    """``begin`` on the driver's cursor, as ``store.prepared`` runs its statements (through
    ``exec_driver_sql`` it was a fifth of a short transaction's cost): ``before_cursor_execute``
    listeners hear it, and a failure (the write lock held past the busy timeout) goes through
    SQLAlchemy's own handling of a statement's error: raised as its error, and a driver
    connection found closed is invalidated, not handed back to the pool."""
    cursor = None
    try:
        cursor = connection.connection.dbapi_connection.cursor()
        if connection.dispatch.before_cursor_execute:
            connection.dispatch.before_cursor_execute(connection, cursor, begin, (), None, False)
        cursor.execute(begin)
    except sqlite3.Error as error:
        connection._handle_dbapi_exception(error, begin, (), cursor, None)
    finally:
        if cursor is not None:
            cursor.close()


def configure_sqlite(connection: sqlite3.Connection) -> None:
    """WAL, then ``SQLITE_PRAGMAS``, on a new driver connection.

    The switch to WAL is written in the file, so it happens once per database; but SQLite
    does not wait out the busy timeout for it when two connections make it at once (both
    reading the new file, each wanting it alone): one gets "database is locked" at once, as
    when two programs first open a new desk together. That one waits a moment and asks again,
    within the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL").fetchall()
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(_WAL_RETRY_S)
    for pragma in SQLITE_PRAGMAS:
        connection.execute(f"PRAGMA {pragma}")


def checkpoint(engine: Engine) -> None:
    """SQLite: copy what the WAL holds into the database file without waiting for, or
    blocking, anyone (``PASSIVE``); what readers still use is left for the next time.
    PostgreSQL: nothing to do.

    On the driver connection, outside any transaction (SQLite refuses a checkpoint inside
    one, and the engine's "begin" would take the write lock).
    """
    if not is_sqlite(engine):
        return
    raw = engine.raw_connection()
    try:
        cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            cursor.close()
    except sqlite3.Error as exc:
        raise driver_error(exc) from exc
    finally:
        raw.close()


@contextmanager
def transaction(engine: Engine | Connection) -> Iterator[Session]:
    """One write transaction: commits if the block succeeds, rolls everything back if not.

    Given a Connection (not in a transaction) rather than the Engine, the transaction runs on
    it: a loop of short transactions then skips the pool checkout (and PostgreSQL's ping).
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            raise _operational_error(exc) from exc
        except StaleDataError as exc:  # a ticket written since it was read (ticket.version)
            session.rollback()
            raise Conflict(STALE_WRITE) from exc
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reading only; on SQLite it does not take the write lock."""
    with Session(engine.execution_options(**{READ_ONLY_OPTION: True})) as session:
        try:
            yield session
        except OperationalError as exc:
            raise _operational_error(exc) from exc


def _operational_error(exc: OperationalError) -> DeskError:
    return driver_error(exc.orig if exc.orig is not None else exc)


def is_unreachable(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, says the desk database cannot be
    used for now - the server down or restarting, the connection lost, a SQLite lock held
    past the busy timeout - rather than that the request or the code is wrong: the same
    request may well succeed later."""
    for current in errors_behind(error):
        if isinstance(current, DisconnectionError | PoolTimeout):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if (away := driver_away(current)) is not None:
            return away
    return False


def is_stale_write(error: BaseException) -> bool:
    """Whether ``error`` is a ticket write that lost a race (``STALE_WRITE``): another write of
    the same ticket committed first; done again on the ticket as it is now, it may succeed."""
    return isinstance(error, Conflict) and isinstance(error.__cause__, StaleDataError)


def unreachable_reason(error: BaseException) -> str:
    """The driver's own first line for why the database is unreachable (the innermost error
    ``error`` was raised from), e.g. "database is locked"."""
    innermost, seen = error, {id(error)}
    while (cause := innermost.__cause__) is not None and id(cause) not in seen:
        innermost = cause
        seen.add(id(cause))
    return (str(innermost).strip().splitlines() or [type(innermost).__name__])[0]
