"""Pull next: give an expert the next waiting ticket of a queue, atomically, in one statement.

A pull is the desk's hottest write: every expert's one key, many of them at the same instant
on one database. So it is a single ``UPDATE ticket ... WHERE id = (the next waiting ticket)
RETURNING id, key`` run straight on the pooled driver connection, committed on its own:

- the caller's membership of the queue's team, and the queue still being what we read (team,
  ordering), are ``EXISTS`` conditions of the candidate, so the statement claims nothing for
  someone who may not pull (the reason is then read and reported);
- the pull's log lines (``ticket.assigned_from_queue``, ``ticket.status_changed`` new ->
  open) are written by the database trigger ``ticket_pulled`` (migration 0006), which fires
  for an UPDATE that sets ``ticket.pulled_from``; only this statement sets it;
- SQLite: the statement takes the write lock before it reads (a writing statement begins a
  write transaction), so no two pullers see the same candidate, and holds it for that one
  statement only. PostgreSQL: the candidate is chosen ``FOR UPDATE SKIP LOCKED``.

The queue's team and ordering are read once per driver connection and remembered there;
the claim's ``EXISTS`` re-checks them on every pull, and a miss reads them again.

The events' workflows (the SMS and email naming the expert) run after the pull commits:
``engine.dispatch.pull_and_dispatch``; an event whose dispatch was missed (a crash in
between) is picked up by the worker's backlog pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any, cast

from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, Dialect, Engine, bindparam, case, func, update
from sqlalchemy import exists as sa_exists
from sqlalchemy import select as sa_select
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel import col

from cxdesk.errors import DeskError, PermissionDenied, QueueEmpty
from cxdesk.store.db import driver_error
from cxdesk.store.directory import no_queue
from cxdesk.store.models import (
    PRIORITY_RANK,
    Membership,
    Queue,
    QueueOrder,
    Status,
    StatusCategory,
    Team,
    Ticket,
    User,
    utcnow,
)

# SKIP LOCKED may find nothing while tickets wait, all locked by other pullers: look again.
_PULL_RETRIES = 20
_RETRY_SLEEP_S = 0.005
_SCOPE_CACHE = "cxdesk_pull_scopes"
"""Key in the driver connection's ``info``: queue name -> its _Scope."""


def _caller_on(team_id: Any) -> Any:
    """Whether the caller (bind ``user``) is on the team ``team_id``."""
    return sa_exists().where(
        col(Membership.team_id) == team_id, col(Membership.user_id) == bindparam("user")
    )


# The queue by name, its team, and whether the caller is on that team: one row or none.
_SCOPE = (
    sa_select(
        col(Queue.name),
        col(Queue.ordering),
        col(Team.id),
        col(Team.name),
        _caller_on(col(Team.id)).label("member"),
    )
    .join(Team, col(Team.id) == col(Queue.team_id))
    .where(col(Queue.name) == bindparam("queue"))
)
WAITING = (
    sa_select(col(Ticket.id))
    .join(Status, col(Status.name) == col(Ticket.status))
    .where(
        col(Ticket.team_id) == bindparam("team"),
        col(Ticket.owner_id).is_(None),
        col(Status.category) == StatusCategory.open,
    )
)
"""The tickets a queue of the team (bind ``team``) hands out: unowned, in an open status."""
_COUNT_WAITING = sa_select(func.count()).select_from(WAITING.subquery())


def queue_order(by_priority: bool) -> list[Any]:
    """The order a queue hands out its waiting tickets: oldest first, or priority then oldest
    (a priority queue); the id breaks ties. Positions (``store.waiting``) count in it too.

    Tickets put back at the head (``queue_band`` 0: a no-show recall, ``store.noshow``) come
    before all others, whatever their priority: the customer was told to come now. The band
    leads ``ix_ticket_waiting`` after the team, so an oldest-first pull still reads one entry."""
    rank = [case(PRIORITY_RANK, value=Ticket.priority, else_=len(PRIORITY_RANK))]
    return [
        col(Ticket.queue_band),
        *(rank if by_priority else []),
        col(Ticket.created_at),
        col(Ticket.id),
    ]


def _claim(by_priority: bool, postgres: bool) -> Any:
    """The pull: claim the queue's next waiting ticket for the caller, if the caller is on
    its team and the queue is still (name, team, ordering) as read."""
    candidate = WAITING.where(
        _caller_on(bindparam("team")),
        sa_exists().where(
            col(Queue.name) == bindparam("queue"),
            col(Queue.team_id) == bindparam("team"),
            col(Queue.ordering) == bindparam("ordering"),
        ),
    )
    candidate = candidate.order_by(*queue_order(by_priority)).limit(1)
    if postgres:
        candidate = candidate.with_for_update(skip_locked=True, of=Ticket)
    return (
        update(Ticket)
        .where(col(Ticket.id) == candidate.scalar_subquery(), col(Ticket.owner_id).is_(None))
        .values(
            owner_id=bindparam("user"),
            status=case((col(Ticket.status) == "new", "open"), else_=col(Ticket.status)),
            updated_at=bindparam("now"),
            pulled_from=bindparam("queue"),  # fires the trigger that logs the pull
        )
        .returning(col(Ticket.id), col(Ticket.key))
    )


@dataclass(frozen=True)
class _Compiled:
    """A Core statement compiled once for one dialect, run straight on a driver cursor."""

    sql: str
    fixed: dict[str, Any]
    order: tuple[str, ...] | None
    """Bind names in order, for a positional paramstyle (SQLite's ``?``); else None."""
    operational_error: type[Exception]
    """The driver's OperationalError (locked, read-only, server gone): a clear line."""

    @classmethod
    def of(cls, statement: ClauseElement, dialect: Dialect) -> _Compiled:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        # The statement's literals, once; the binds without a value are each call's.
        given = {name: None for name, bind in compiled.binds.items() if bind.required}
        fixed = {
            name: value.value if isinstance(value, Enum) else value
            for name, value in (compiled.construct_params(given) or {}).items()
        }
        order = tuple(compiled.positiontup or ()) if compiled.positional else None
        return cls(compiled.string, fixed, order, dialect.loaded_dbapi.OperationalError)

    def run(self, cursor: Any, **values: Any) -> list[Any]:
        params = {**self.fixed, **values}
        cursor.execute(self.sql, tuple(params[n] for n in self.order) if self.order else params)
        return list(cursor.fetchall())


@dataclass(frozen=True)
class _Statements:
    scope: _Compiled
    count_waiting: _Compiled
    claim: dict[bool, _Compiled]
    """by priority -> the claim"""
    now: Any
    """The dialect's conversion of a datetime parameter (SQLite stores text)."""


@cache
def _statements(dialect: Dialect) -> _Statements:
    postgres = dialect.name == "postgresql"
    processor = Ticket.__table__.c.updated_at.type.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[attr-defined]
    return _Statements(
        scope=_Compiled.of(_SCOPE, dialect),
        count_waiting=_Compiled.of(_COUNT_WAITING, dialect),
        claim={p: _Compiled.of(_claim(p, postgres), dialect) for p in (False, True)},
        now=processor or (lambda value: value),
    )


@dataclass(frozen=True)
class Pulled:
    """The ticket a pull gave the caller (committed, with its events)."""

    id: int
    key: str
    queue: str


@dataclass(frozen=True)
class _Scope:
    queue: str
    ordering: str
    team_id: int


def pull_next(bind: Engine | Connection, *, actor: User, queue_name: str) -> Pulled:
    """Give ``actor`` the next unowned, unresolved ticket of the queue's team, and commit.

    Oldest first, or priority then oldest for a priority queue. Refused (nothing changed)
    for an unknown queue or a caller not on its team; ``QueueEmpty`` when nothing waits.
    ``bind`` is the engine (the pull takes a pooled connection) or a Connection that is not
    in a transaction (a loop of pulls then skips the pool's checkout and its ping).
    """
    if isinstance(bind, Connection):
        return _pull(bind.connection, bind.dialect, actor, queue_name)
    raw = bind.raw_connection()
    try:
        return _pull(raw, bind.dialect, actor, queue_name)
    finally:
        raw.close()


def _pull(raw: Any, dialect: Dialect, actor: User, queue_name: str) -> Pulled:
    if dialect.name != "postgresql":  # sqlite3 as cxdesk opens it: each statement autocommits
        return _pull_on(raw, _statements(dialect), actor, queue_name)
    # psycopg opens a transaction before a statement (a round trip to the server, and
    # another for COMMIT): one statement is its own transaction in autocommit mode.
    driver = raw.driver_connection
    if driver.info.transaction_status != TransactionStatus.IDLE:
        raw.rollback()  # the pool's ping (SELECT 1) left its transaction open; nothing else
    driver.autocommit = True
    try:
        return _pull_on(raw, _statements(dialect), actor, queue_name)
    finally:
        driver.autocommit = False


def _pull_on(raw: Any, statements: _Statements, actor: User, queue_name: str) -> Pulled:
    scopes: dict[str, _Scope] = raw.info.setdefault(_SCOPE_CACHE, {})
    cursor = raw.cursor()
    try:
        scope = scopes.get(queue_name)
        for _attempt in range(_PULL_RETRIES):
            if scope is None:
                scope = scopes[queue_name] = _read_scope(raw, cursor, statements, actor, queue_name)
            rows = _run(raw, cursor, statements.claim[scope.ordering == QueueOrder.priority],
                        user=actor.id, team=scope.team_id, queue=scope.queue,
                        ordering=scope.ordering, now=statements.now(utcnow()))  # fmt: skip
            if rows:
                ticket_id, key = rows[0]
                return Pulled(id=ticket_id, key=key, queue=scope.queue)
            # Nothing claimed: the caller left the team, the queue changed, nothing waits, or
            # (PostgreSQL) every waiting ticket is locked by another puller this instant.
            fresh = _read_scope(raw, cursor, statements, actor, queue_name)
            if fresh != scope:
                scope = scopes[queue_name] = fresh
                continue
            if not _run(raw, cursor, statements.count_waiting, team=scope.team_id)[0][0]:
                raise QueueEmpty(f"No tickets waiting in {scope.queue}")
            time.sleep(_RETRY_SLEEP_S)
        raise DeskError(f"Queue {queue_name} is busy; try again")
    finally:
        cursor.close()


def _read_scope(
    raw: Any, cursor: Any, statements: _Statements, actor: User, queue_name: str
) -> _Scope:
    rows = _run(raw, cursor, statements.scope, user=actor.id, queue=queue_name)
    if not rows:
        raise no_queue(queue_name)
    queue, ordering, team_id, team_name, member = rows[0]
    if not member:
        raise PermissionDenied(f"You are not on team {team_name}")
    return _Scope(queue=queue, ordering=ordering, team_id=team_id)


def _run(raw: Any, cursor: Any, statement: _Compiled, **values: Any) -> list[Any]:
    """One statement in a transaction of its own; a driver failure becomes one clear line."""
    try:
        rows = statement.run(cursor, **values)
        raw.commit()
    except BaseException as exc:
        raw.rollback()
        if isinstance(exc, statement.operational_error):
            raise driver_error(exc) from exc
        raise
    return rows
