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
the claim's ``EXISTS`` re-checks them on every pull, and a miss reads them again. On
PostgreSQL that usual pull is prepared once per connection and run straight on libpq
(``store.pg_prepared``: no cursor, no BEGIN, no autocommit switch).

A pull from **any of the caller's teams** (``pull_any``) is the same statement over every
team the caller is on that has a queue: priority then the longest wait, or the longest wait
(desk setting ``pull_any_order``: ``store.caps``); its ``pulled_from`` is the queue the ticket
waits in (its team's first queue, as ``store.waiting`` places it), so its log and its
customer's messages are a queue pull's.

A **cap** (``store.caps``) is a condition of the claim: the caller's open tickets, counted in
the same statement, below it. SQLite: the statement holds the write lock from its start, so
two pulls of one expert are one after the other and the second counts the first's ticket.
PostgreSQL: a statement counts in the snapshot it started with, so a capped pull is a short
transaction that first locks the caller's ``user`` row (``FOR UPDATE``), then claims: a
second pull of the same expert waits on that lock and its claim, a new statement, counts the
first's committed ticket. An uncapped pull stays one statement.

The events' workflows (the SMS and email naming the expert) run after the pull commits:
``engine.dispatch.pull_and_dispatch``; an event whose dispatch was missed (a crash in
between) is picked up by the worker's backlog pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    update,
)
from sqlalchemy import exists as sa_exists
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import col

from cxdesk.errors import DeskError, PermissionDenied, QueueEmpty
from cxdesk.i18n import _
from cxdesk.store.caps import (
    ANY_ORDER_SETTING,
    CAP_SETTING,
    NO_CAP,
    UNCAPPED,
    CapReached,
    cap_message,
    effective_cap,
    wait_first,
)
from cxdesk.store.db import driver_error
from cxdesk.store.directory import no_queue
from cxdesk.store.driver_sql import Compiled, run_sql
from cxdesk.store.models import (
    PRIORITY_RANK,
    DeskSetting,
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
from cxdesk.store.ticket_versions import NEXT_VERSION

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


_HELD = aliased(Ticket, name="held")
_OPEN_HELD = (
    sa_select(func.count())
    .select_from(_HELD)
    .join(Status, col(Status.name) == col(_HELD.status))
    .where(col(_HELD.owner_id) == bindparam("user"), col(Status.category) == StatusCategory.open)
)
"""How many open tickets the caller (bind ``user``) holds."""


def _setting(name: str) -> Any:
    return sa_select(col(DeskSetting.value)).where(col(DeskSetting.name) == name).scalar_subquery()


# What every pull reads first: the caller's name and cap, the desk's cap and any-pull order.
_CALLER = sa_select(
    col(User.username),
    col(User.max_open_tickets),
    _setting(CAP_SETTING),
    _setting(ANY_ORDER_SETTING),
).where(col(User.id) == bindparam("user"))
_LOCK_CALLER = sa_select(col(User.id)).where(col(User.id) == bindparam("user")).with_for_update()
_ANY_WAITING = (
    sa_select(col(Ticket.id))
    .join(Status, col(Status.name) == col(Ticket.status))
    .where(
        col(Ticket.team_id).in_(
            sa_select(col(Membership.team_id)).where(col(Membership.user_id) == bindparam("user"))
        ),
        col(Ticket.owner_id).is_(None),
        col(Status.category) == StatusCategory.open,
        sa_exists().where(col(Queue.team_id) == col(Ticket.team_id)),
    )
)
"""The tickets a pull from any of the caller's teams may take: waiting in a team of theirs
that has a queue."""
_COUNT_ANY_WAITING = sa_select(func.count()).select_from(_ANY_WAITING.subquery())
_COUNT_MY_QUEUES = sa_select(func.count()).where(
    col(Membership.user_id) == bindparam("user"),
    sa_exists().where(col(Queue.team_id) == col(Membership.team_id)),
)
"""How many of the caller's teams have a queue (none: an any-pull is refused, not empty)."""
_TICKET_QUEUE = (
    sa_select(col(Queue.name))
    .where(col(Queue.team_id) == col(Ticket.team_id))
    .order_by(col(Queue.id))
    .limit(1)
    .scalar_subquery()
)
"""The queue a ticket waits in (its team's first: ``waiting.ticket_queue``)."""


_NO_CAP = sa_exists().where(
    col(User.id) == bindparam("user"),
    or_(
        col(User.max_open_tickets) == UNCAPPED,
        and_(
            col(User.max_open_tickets).is_(None),
            func.coalesce(func.lower(func.trim(_setting(CAP_SETTING))), literal_column("''")).in_(
                [literal_column("''"), literal_column(f"'{NO_CAP}'")]
            ),
        ),
    ),
)
"""No cap applies to the caller (bind ``user``): their own is "none", or they follow a desk
with no ``max_open_tickets`` (one read of the caller's row). (A desk setting that is not a
number also means no cap to ``store.caps``; this condition is then false and the pull reads
the caller first.)"""


def claimed(owner: Any, now: Any, queue: Any) -> dict[str, Any]:
    """What a pull writes on the ticket it takes (an auto-assignment too, ``store.assign``):
    the owner, new -> open, the time, the SLA's first response if it had none, and
    ``pulled_from``, which fires the trigger that logs the pull (migration 0006)."""
    return {
        "owner_id": owner,
        "status": case((col(Ticket.status) == "new", "open"), else_=col(Ticket.status)),
        "updated_at": now,
        "first_responded_at": func.coalesce(col(Ticket.first_responded_at), now),
        "pulled_from": queue,
        "version": NEXT_VERSION,
    }


def _claim(
    by_priority: bool, postgres: bool, *, any_team: bool, capped: bool, unread: bool = False
) -> Any:
    """The pull: claim the next waiting ticket for the caller, of a queue if the caller is on
    its team and the queue is still (name, team, ordering) as read, or (``any_team``) of any
    of the caller's teams; ``capped``: only while the caller holds fewer than bind ``cap``;
    ``unread``: the caller's cap not read yet, only if no cap applies (``_NO_CAP``)."""
    if any_team:
        candidate = _ANY_WAITING
    else:
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
    conditions = [col(Ticket.id) == candidate.scalar_subquery(), col(Ticket.owner_id).is_(None)]
    if capped:
        conditions.append(_OPEN_HELD.scalar_subquery() < bindparam("cap"))
    if unread:
        conditions.append(_NO_CAP)
    return (
        update(Ticket)
        .where(*conditions)
        .values(
            **claimed(
                bindparam("user"),
                bindparam("now"),
                _TICKET_QUEUE if any_team else bindparam("queue"),
            )
        )
        .returning(col(Ticket.id), col(Ticket.key), col(Ticket.pulled_from))
    )


_ClaimKey = tuple[bool, bool, bool]
"""(any team, by priority, capped)"""


@dataclass(frozen=True)
class _Statements:
    postgres: bool
    scope: Compiled
    caller: Compiled
    lock_caller: Compiled
    open_held: Compiled
    count_waiting: Compiled
    count_any_waiting: Compiled
    count_my_queues: Compiled
    claim: dict[_ClaimKey, Compiled]
    unread_claim: dict[bool, Compiled]
    """A queue's claim before the caller is read, by priority order (see ``_pull_on``)."""
    prepared_claim: dict[bool, Any]
    """PostgreSQL: ``unread_claim`` prepared on libpq (``store.pg_prepared``); else empty."""
    idle: Any
    """PostgreSQL: libpq's status of a connection outside any transaction."""
    now: Any
    """The dialect's conversion of a datetime parameter (SQLite stores text)."""


@cache
def _statements(dialect: Dialect) -> _Statements:
    postgres = dialect.name == "postgresql"
    processor = Ticket.__table__.c.updated_at.type.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[attr-defined]
    both = (False, True)
    unread_claim = {
        p: Compiled.of(_claim(p, postgres, any_team=False, capped=False, unread=True), dialect)
        for p in both
    }
    prepared_claim: dict[bool, Any] = {}
    idle = None
    if postgres:  # only here: a SQLite desk never loads psycopg
        from cxdesk.store.pg_prepared import IDLE, Prepared

        prepared_claim = {p: Prepared(unread_claim[p]) for p in both}
        idle = IDLE
    return _Statements(
        postgres=postgres,
        scope=Compiled.of(_SCOPE, dialect),
        caller=Compiled.of(_CALLER, dialect),
        lock_caller=Compiled.of(_LOCK_CALLER, dialect),
        open_held=Compiled.of(_OPEN_HELD, dialect),
        count_waiting=Compiled.of(_COUNT_WAITING, dialect),
        count_any_waiting=Compiled.of(_COUNT_ANY_WAITING, dialect),
        count_my_queues=Compiled.of(_COUNT_MY_QUEUES, dialect),
        claim={
            (a, p, c): Compiled.of(_claim(p, postgres, any_team=a, capped=c), dialect)
            for a in both
            for p in both
            for c in both
        },
        unread_claim=unread_claim,
        prepared_claim=prepared_claim,
        idle=idle,
        now=processor or (lambda value: value),
    )


@dataclass(frozen=True)
class Pulled:
    """The ticket a pull gave the caller (committed, with its events)."""

    id: int
    key: str
    queue: str
    """The queue it was pulled from (for a pull from any team: the queue it waited in)."""


@dataclass(frozen=True)
class _Scope:
    queue: str
    ordering: str
    team_id: int


@dataclass(frozen=True)
class _Caller:
    """What a pull reads of its caller and the desk first, every pull (caps change)."""

    username: str
    cap: int | None
    wait_first: bool
    """A pull from any team takes the longest wait first (desk ``pull_any_order = wait``)."""


def pull_next(bind: Engine | Connection, *, actor: User, queue_name: str | None) -> Pulled:
    """Give ``actor`` the next unowned, unresolved ticket of the queue's team, and commit;
    ``queue_name`` None: the most urgent of any of the caller's teams (``pull_any``).

    Oldest first, or priority then oldest for a priority queue. Refused (nothing changed)
    for an unknown queue, a caller not on its team, or a caller at their cap (``CapReached``);
    ``QueueEmpty`` when nothing waits.
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


def pull_any(bind: Engine | Connection, *, actor: User) -> Pulled:
    """Give ``actor`` the most urgent waiting ticket across their teams' queues: priority,
    then the longest wait (or the longest wait: desk ``pull_any_order = wait``)."""
    return pull_next(bind, actor=actor, queue_name=None)


def _pull(raw: Any, dialect: Dialect, actor: User, queue_name: str | None) -> Pulled:
    statements = _statements(dialect)
    if not statements.postgres:  # sqlite3 as cxdesk opens it: each statement autocommits
        return _pull_on(raw, statements, actor, queue_name)
    driver = raw.driver_connection
    if driver.pgconn.transaction_status != statements.idle:
        raw.rollback()  # the pool's ping (SELECT 1) left its transaction open; nothing else
    prepared = driver.prepare_threshold is not None  # None: nothing prepared (PgBouncer)
    pulled = _usual_pull(raw, None, statements, actor, queue_name) if prepared else None
    if pulled is not None:
        return pulled
    # psycopg opens a transaction before a statement (a round trip to the server, and
    # another for COMMIT): one statement is its own transaction in autocommit mode.
    driver.autocommit = True
    try:
        return _pull_on(raw, statements, actor, queue_name, tried=prepared)
    finally:
        driver.autocommit = False


def _usual_pull(
    raw: Any, cursor: Any, statements: _Statements, actor: User, queue_name: str | None
) -> Pulled | None:
    """The usual pull, one statement: a queue read before (its scope remembered on the
    connection), no cap for this caller (a condition of the claim). None: it claimed nothing
    (anything else takes the way of ``_pull_on``: a read first). PostgreSQL: run on libpq,
    prepared (``store.pg_prepared``); the connection is idle, so the statement commits."""
    scope = raw.info.get(_SCOPE_CACHE, {}).get(queue_name) if queue_name is not None else None
    if scope is None:
        return None
    by_priority = scope.ordering == QueueOrder.priority
    values = {"user": actor.id, "now": statements.now(utcnow()), "team": scope.team_id,
              "queue": scope.queue, "ordering": scope.ordering}  # fmt: skip
    if statements.postgres and raw.driver_connection.prepare_threshold is not None:
        # (None: psycopg told to prepare nothing, as behind PgBouncer's transaction pooling,
        # where a statement prepared on one server connection is run on another)
        claim = statements.prepared_claim[by_priority]
        try:
            rows = claim.run(raw, **values)
        except statements.unread_claim[by_priority].operational_error as exc:
            raise driver_error(exc) from exc
    else:
        rows = run_sql(raw, cursor, statements.unread_claim[by_priority], **values)
    if not rows:
        return None
    ticket_id, key, queue = rows[0]
    return Pulled(id=ticket_id, key=key, queue=queue)


def _pull_on(
    raw: Any, statements: _Statements, actor: User, queue_name: str | None, tried: bool = False
) -> Pulled:
    """The pull (``tried``: the usual one statement claimed nothing already)."""
    scopes: dict[str, _Scope] = raw.info.setdefault(_SCOPE_CACHE, {})
    cursor = raw.cursor()
    try:
        if not tried and (pulled := _usual_pull(raw, cursor, statements, actor, queue_name)):
            return pulled
        scope = scopes.get(queue_name) if queue_name is not None else None
        caller = _read_caller(raw, cursor, statements, actor)
        for _attempt in range(_PULL_RETRIES):
            if queue_name is not None and scope is None:
                scope = scopes[queue_name] = _read_scope(raw, cursor, statements, actor, queue_name)
            rows = _claim_rows(raw, cursor, statements, actor, caller, scope)
            if rows:
                ticket_id, key, queue = rows[0]
                return Pulled(id=ticket_id, key=key, queue=queue)
            # Nothing claimed: the caller left the team, the queue changed, the caller is at
            # their cap, nothing waits, or (PostgreSQL) every waiting ticket is locked by
            # another puller this instant.
            if queue_name is not None and scope is not None:
                fresh = _read_scope(raw, cursor, statements, actor, queue_name)
                if fresh != scope:
                    scope = scopes[queue_name] = fresh
                    continue
            if caller.cap is not None:
                held = run_sql(raw, cursor, statements.open_held, user=actor.id)[0][0]
                if held >= caller.cap:
                    raise CapReached(cap_message(caller.username, held, caller.cap))
            if scope is None:
                if not run_sql(raw, cursor, statements.count_any_waiting, user=actor.id)[0][0]:
                    if not run_sql(raw, cursor, statements.count_my_queues, user=actor.id)[0][0]:
                        raise PermissionDenied(_("You are not on a team that has a queue"))
                    raise QueueEmpty(_("No tickets waiting in your teams' queues"))
            elif not run_sql(raw, cursor, statements.count_waiting, team=scope.team_id)[0][0]:
                raise QueueEmpty(_("No tickets waiting in {queue}").format(queue=scope.queue))
            time.sleep(_RETRY_SLEEP_S)
        if queue_name is not None:
            raise DeskError(_("Queue {queue} is busy; try again").format(queue=queue_name))
        raise DeskError(_("Your teams' queues are busy; try again"))
    finally:
        cursor.close()


def _claim_rows(
    raw: Any,
    cursor: Any,
    statements: _Statements,
    actor: User,
    caller: _Caller,
    scope: _Scope | None,
) -> list[Any]:
    """Run the claim that fits (queue or any team, order, cap): its rows (none: nothing)."""
    values: dict[str, Any] = {"user": actor.id, "now": statements.now(utcnow())}
    if scope is None:
        by_priority = not caller.wait_first
    else:
        by_priority = scope.ordering == QueueOrder.priority
        values.update(team=scope.team_id, queue=scope.queue, ordering=scope.ordering)
    capped = caller.cap is not None
    claim = statements.claim[(scope is None, by_priority, capped)]
    if not capped:
        return run_sql(raw, cursor, claim, **values)
    values["cap"] = caller.cap
    if not statements.postgres:  # one statement, under the write lock from its start
        return run_sql(raw, cursor, claim, **values)
    # The caller's row lock orders their own pulls; the claim, a new statement, then counts
    # what the pull before it committed.
    driver = raw.driver_connection
    driver.autocommit = False
    try:
        return run_sql(raw, cursor, statements.lock_caller, claim, **values)
    finally:
        driver.autocommit = True


def _read_caller(raw: Any, cursor: Any, statements: _Statements, actor: User) -> _Caller:
    rows = run_sql(raw, cursor, statements.caller, user=actor.id)
    if not rows:
        raise PermissionDenied(_("No user {actor!r} on this desk").format(actor=actor.username))
    username, user_cap, desk_cap_text, any_order = rows[0]
    return _Caller(username, effective_cap(user_cap, desk_cap_text), wait_first(any_order))


def _read_scope(
    raw: Any, cursor: Any, statements: _Statements, actor: User, queue_name: str
) -> _Scope:
    rows = run_sql(raw, cursor, statements.scope, user=actor.id, queue=queue_name)
    if not rows:
        raise no_queue(queue_name)
    queue, ordering, team_id, team_name, member = rows[0]
    if not member:
        raise PermissionDenied(_("You are not on team {team_name}").format(team_name=team_name))
    return _Scope(queue=queue, ordering=ordering, team_id=team_id)
