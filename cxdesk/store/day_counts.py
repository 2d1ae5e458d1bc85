"""Tickets counted by status over whole past days, remembered per process and revalidated
from the desk's log, so the ticket list's summary line reads a month of 33,000 tickets in
about the time it reads today's.

What is remembered: for one filter (its conditions other than dates) and one local day (its
UTC start and end, so a change of time zone is another day), how many tickets created that
day have each status. A past day's counts change only when one of its tickets changes, and
every change to a ticket writes an ``Event`` row in the same transaction (``store/events.py``;
the pull's trigger writes its two). So a read:

1. asks whether anything changed since the counts were taken: the event table's highest id and
   how many events lie above ``since`` (one statement, from the primary key); unchanged,
   nothing else is read. ``since`` is an id at or below which every event is taken into
   account. SQLite commits one writer at a time, its ids in order: ``since`` is the highest
   id read. PostgreSQL takes ids from a sequence and commits in any order, however late (an
   escalation run of hundreds of tickets in one transaction): each read also takes its
   snapshot's xmin and xmax, and ``since`` moves to the highest id H of a read only once the
   xmin of a later snapshot reaches the xmax of the read after H's (every transaction that
   could hold an id at or below H has ended: one that took its id just before H's read
   has its transaction id by the next). Until then, the events above ``since`` are read
   again and those not ``seen`` taken into account;
2. if it changed: the events above ``since`` not seen yet, their tickets' days (``created_at``
   never changes), and those days only are forgotten. A ticket no longer there, a
   ``ticket.deleted`` event or more than ``MAX_CHANGES`` events to look at (never read
   beyond that) forget every day of the filter; a first read on PostgreSQL keeps no day
   until its own checkpoint has passed (``_fresh``);
3. counts the days it lacks (the first read of a filter, the day that just became yesterday, a
   forgotten one) from the index, one statement a day (a first read of the month costs
   ~2x one plain count; every later one a count of today);
4. counts today and after (the part of the range that is not a whole past day) live.

The log is read before the days are counted, so what is counted is at least as new as what
was seen. Times written by each machine's clock (``updated_at``) are never compared: only
event ids. Used only in a read session (``db.read_session``): a write transaction may hold
changes that are not committed yet (and may be rolled back), so it counts everything plainly.
"""

from __future__ import annotations

import threading
import weakref
from bisect import bisect_left
from collections import Counter, OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, String, cast, func, literal, select
from sqlmodel import Session, col

from cxdesk.store.db import READ_ONLY_OPTION
from cxdesk.store.definitions import desk_definitions
from cxdesk.store.models import Event, Ticket

Day = tuple[datetime, datetime]
"""A local day as its UTC start (included) and end (excluded)."""

MAX_CHANGES = 5000
"""More unseen events than this (a process that read long ago) forget every day instead."""
FORGETS_ALL = frozenset({"ticket.deleted"})
"""Events after which no ticket is left to say which day changed: every day is forgotten.

The desk deletes no ticket and no event today. A delete of tickets must keep the log: never
delete ``event`` rows (their ``ticket_id`` set to NULL instead), and write this event in the
same transaction. SQLite's event ids are not AUTOINCREMENT: deleting the newest events would
let the next one take an id already read, and the change would go unseen (on PostgreSQL the
sequence never goes back)."""
FILTERS_KEPT = 32
CHECKPOINTS_KEPT = 16
DAYS_KEPT = 1000

STATUS = (col(Ticket.status) + "").label("status_name")
"""Grouped by an expression, not the column: otherwise SQLite (without statistics) walks every
ticket in status-index order to skip a sort, instead of the range of ix_ticket_created_status
(measured on 100,000 tickets: 75 ms -> 14 ms)."""


@dataclass(frozen=True)
class _Remembered:
    """One filter's counts and the part of the log they are known to include."""

    highest: int
    since: int
    """Every event at or below this id is taken into account (committed or ended)."""
    seen: frozenset[int]
    """The ids of the events above ``since`` already taken into account."""
    days: Mapping[Day, Mapping[str, int]]
    checkpoints: tuple[tuple[int, int | None], ...] = ()
    """PostgreSQL: (highest id visible at a read, the ``xmax`` of the read after it, None
    until then); ``since`` moves to that id once no transaction older than that xmax runs."""
    trusted: bool = True
    """Whether days counted now may be kept (PostgreSQL: not until the first read's
    checkpoint has passed, see ``_fresh``)."""


@dataclass(frozen=True)
class _Position:
    highest: int
    recent: int
    """Events above the ``since`` asked with."""
    xmin: int | None
    """PostgreSQL: the statement's snapshot's xmin and xmax (as integers); None on SQLite."""
    xmax: int | None


_lock = threading.Lock()
_kept: weakref.WeakKeyDictionary[Any, OrderedDict[Hashable, _Remembered]] = (
    weakref.WeakKeyDictionary()
)
"""Per database (its connection pool, shared by the engine's option copies), per desk
(``desk_revision.desk``: a desk made again or restored at the same place is another desk) and
filter."""


def can_remember(session: Session) -> bool:
    """Whether ``session`` reads committed rows only (a read session)."""
    return bool(session.get_bind().get_execution_options().get(READ_ONLY_OPTION, False))


def counts(
    session: Session,
    where: Sequence[ColumnElement[bool]],
    *,
    key: Hashable,
    days: Sequence[Day],
    rest: tuple[datetime, datetime | None] | None,
) -> Counter[str]:
    """Tickets by status matching ``where`` created in ``days`` (whole past days, in order,
    remembered under ``key``: the filter) and in ``rest`` (start, end or None: counted live)."""
    bind = session.get_bind()
    pool = (bind if isinstance(bind, Engine) else bind.engine).pool
    key = (desk_definitions(session).desk, key)
    with _lock:
        remembered = _kept.get(pool, OrderedDict()).get(key)
    remembered = _revalidated(session, remembered)
    earlier, wanted = remembered.days, set(days)
    found = {day: counted for day, counted in earlier.items() if day not in wanted}
    found.update((day, earlier[day]) for day in days if day in earlier)  # the newest last
    found.update(_count_days(session, where, [day for day in days if day not in earlier]))
    for day in list(found)[: max(0, len(found) - max(DAYS_KEPT, len(days)))]:
        del found[day]  # the longest unread first, never one read now
    _keep(pool, key, replace(remembered, days=found if remembered.trusted else {}))
    total: Counter[str] = Counter()
    for day in days:
        total.update(found[day])
    if rest is not None:
        start, end = rest
        bounds = [col(Ticket.created_at) >= start]
        if end is not None:
            bounds.append(col(Ticket.created_at) < end)
        total.update(dict(grouped(session, [*where, *bounds])))
    return total


def _keep(pool: Any, key: Hashable, remembered: _Remembered) -> None:
    with _lock:
        filters = _kept.setdefault(pool, OrderedDict())
        filters[key] = remembered
        filters.move_to_end(key)
        while len(filters) > FILTERS_KEPT:
            filters.popitem(last=False)


def forget_all() -> None:
    """Drop every remembered count (to measure a first read)."""
    with _lock:
        _kept.clear()


def _position(session: Session, since: int | None) -> _Position:
    """The event table's highest id, how many events lie above ``since`` (None: not asked)
    and, on PostgreSQL, the snapshot they were read in: one statement."""
    highest = select(func.coalesce(func.max(col(Event.id)), 0)).scalar_subquery()
    recent: Any = literal(0)
    if since is not None:
        recent = select(func.count()).where(col(Event.id) > since).scalar_subquery()
    if session.get_bind().dialect.name != "postgresql":
        found, above = session.execute(select(highest, recent)).one()
        return _Position(int(found), int(above), None, None)
    snapshot = func.pg_current_snapshot()
    found, above, xmin, xmax = session.execute(
        select(
            highest,
            recent,
            cast(func.pg_snapshot_xmin(snapshot), String),
            cast(func.pg_snapshot_xmax(snapshot), String),
        )
    ).one()
    return _Position(int(found), int(above), int(xmin), int(xmax))


def _fresh(position: _Position) -> _Remembered:
    """Nothing remembered, from the log as it is at ``position``.

    SQLite commits its ids in order (one writer), so every event at or below the highest id
    is committed: ``since`` is that id. On PostgreSQL a transaction still running may hold a
    lower id it commits later; which one is not known here. So ``since`` is the highest id,
    but the days counted are not kept (``trusted`` False) until this read's checkpoint has
    passed (every transaction that could hold an id at or below it has ended): days counted
    after that include whatever those transactions did, and anything later is above
    ``since``. Until then each read counts its days as a first read does."""
    if position.xmin is None:
        return _Remembered(position.highest, position.highest, frozenset(), {})
    return _Remembered(
        position.highest,
        position.highest,
        frozenset(),
        {},
        checkpoints=((position.highest, None),),
        trusted=False,
    )


def _horizon(remembered: _Remembered, position: _Position) -> _Remembered:
    """``remembered`` with its checkpoints paired with ``position``'s snapshot, ``since``
    moved to the highest checkpoint passed, and this read's checkpoint added."""
    if position.xmin is None:  # SQLite: every id at or below the highest is committed
        return replace(remembered, since=max(remembered.since, position.highest))
    paired = [(h, position.xmax if x is None else x) for h, x in remembered.checkpoints]
    passed = [h for h, x in paired if x is not None and position.xmin >= x]
    waiting = [(h, x) for h, x in paired if not (x is not None and position.xmin >= x)]
    if not waiting or waiting[-1][0] < position.highest:
        if len(waiting) >= CHECKPOINTS_KEPT:
            del waiting[-1]  # a later checkpoint covers more: only ``since`` moves less
        waiting.append((position.highest, None))
    since = max([remembered.since, *passed])
    return replace(
        remembered,
        since=since,
        seen=frozenset(i for i in remembered.seen if i > since),
        checkpoints=tuple(waiting),
        trusted=remembered.trusted or bool(passed),
    )


def _revalidated(session: Session, remembered: _Remembered | None) -> _Remembered:
    """``remembered`` with the days whose tickets changed since forgotten, and the log's
    position now; a fresh (empty) one the first time or if the log went back (another
    database at the same place)."""
    position = _position(session, None if remembered is None else remembered.since)
    if remembered is None or position.highest < remembered.highest:
        return _fresh(position)
    if position.highest == remembered.highest and position.recent == len(remembered.seen):
        return _horizon(remembered, position)
    limit = MAX_CHANGES + len(remembered.seen) + 1
    rows = session.execute(
        select(col(Event.id), col(Event.ticket_id), col(Event.kind))
        .where(col(Event.id) > remembered.since)
        .order_by(col(Event.id))
        .limit(limit)
    ).all()
    if len(rows) == limit:  # more than MAX_CHANGES unseen: not read, every day forgotten
        return _fresh(position)
    unseen = [(t, kind) for i, t, kind in rows if i not in remembered.seen]
    changed = {t for t, _ in unseen if t is not None}
    if any(kind in FORGETS_ALL for _, kind in unseen):
        days: Mapping[Day, Mapping[str, int]] = {}
    else:
        days = _unchanged_days(session, remembered.days, changed)
    highest = max([position.highest, *(i for i, _, _ in rows)])
    read = replace(remembered, highest=highest, seen=frozenset(i for i, _, _ in rows), days=days)
    return _horizon(read, position)


def _unchanged_days(
    session: Session, days: Mapping[Day, Mapping[str, int]], tickets: set[int]
) -> Mapping[Day, Mapping[str, int]]:
    """``days`` without those a ticket of ``tickets`` was created on (none if one is gone)."""
    if not tickets or not days:
        return days
    created = sorted(
        _utc(at)
        for at in session.scalars(
            select(col(Ticket.created_at)).where(col(Ticket.id).in_(sorted(tickets)))
        )
    )
    if len(created) < len(tickets):
        return {}
    return {day: found for day, found in days.items() if not _any_within(created, day)}


def _any_within(ordered: list[datetime], day: Day) -> bool:
    at = bisect_left(ordered, day[0])
    return at < len(ordered) and ordered[at] < day[1]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _count_days(
    session: Session, where: Sequence[ColumnElement[bool]], days: Sequence[Day]
) -> dict[Day, dict[str, int]]:
    """Each day's counts, one statement a day (a range of the index). One statement over a
    run of days with a CASE numbering the day cost twice as much on 100,000 tickets (SQLite:
    the kanban's 59 buckets 76 -> 37 ms; PostgreSQL about even)."""
    created = col(Ticket.created_at)
    return {
        day: dict(grouped(session, [*where, created >= day[0], created < day[1]])) for day in days
    }


def grouped(session: Session, where: Sequence[ColumnElement[bool]]) -> list[tuple[str, int]]:
    statement = select(STATUS, func.count()).where(*where).group_by(STATUS)
    return [(status, count) for status, count in session.execute(statement)]
