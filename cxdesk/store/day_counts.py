"""Tickets counted by status over whole past days, remembered per process and revalidated
from the desk's log, so the ticket list's summary line reads a month of 33,000 tickets in
about the time it reads today's.

What is remembered: for one filter (its conditions other than dates) and one local day (its
UTC start and end, so a change of time zone is another day), how many tickets created that
day have each status. A past day's counts change only when one of its tickets changes, and
every change to a ticket writes an ``Event`` row in the same transaction (``store/events.py``;
the pull's trigger writes its two). So a read:

1. asks whether anything changed since the counts were taken: the event table's highest id and
   how many events lie above ``since`` (``store/changes.py``'s token, from the primary key,
   PostgreSQL's late commits included within ``LATE_COMMIT_WINDOW``; SQLite commits its ids
   in order, so the highest id alone: events are never deleted, or SQLite could give the
   highest id again); unchanged, nothing else is read;
2. if it changed: the events above ``since`` not seen yet, their tickets' days (``created_at``
   never changes), and those days only are forgotten. A ticket no longer there, a
   ``ticket.deleted`` event or too many changes to look at forget every day of the filter;
3. counts the days it lacks (the first read of a filter, the day that just became yesterday, a
   forgotten one) from the index, one statement per run of consecutive days (a first read
   of the month costs ~2.5x one plain count; every later one a count of today);
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
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, case, func, literal, select
from sqlmodel import Session, col

from cxdesk.store.changes import LATE_COMMIT_WINDOW, change_token
from cxdesk.store.db import READ_ONLY_OPTION
from cxdesk.store.models import Event, Ticket

Day = tuple[datetime, datetime]
"""A local day as its UTC start (included) and end (excluded)."""

MAX_CHANGES = 5000
"""More unseen events than this (a process that read long ago) forget every day instead."""
FORGETS_ALL = frozenset({"ticket.deleted"})
"""Events after which no ticket is left to say which day changed: every day is forgotten.
(The desk deletes no ticket today; one that does must write this event.)"""
FILTERS_KEPT = 32
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
    seen: frozenset[int]
    """The ids of the events above ``since`` already taken into account."""
    days: Mapping[Day, Mapping[str, int]]


_lock = threading.Lock()
_kept: weakref.WeakKeyDictionary[Any, OrderedDict[Hashable, _Remembered]] = (
    weakref.WeakKeyDictionary()
)
"""Per database (its connection pool, shared by the engine's option copies), per filter."""


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
    with _lock:
        remembered = _kept.get(pool, OrderedDict()).get(key)
    remembered = _revalidated(session, remembered)
    earlier, wanted = remembered.days, set(days)
    found = {day: counted for day, counted in earlier.items() if day not in wanted}
    found.update((day, earlier[day]) for day in days if day in earlier)  # the newest last
    found.update(_count_days(session, where, [day for day in days if day not in earlier]))
    for day in list(found)[: max(0, len(found) - max(DAYS_KEPT, len(days)))]:
        del found[day]  # the longest unread first, never one read now
    _keep(pool, key, _Remembered(remembered.highest, remembered.since, remembered.seen, found))
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


def _revalidated(session: Session, remembered: _Remembered | None) -> _Remembered:
    """``remembered`` with the days whose tickets changed since forgotten, and the log's
    position now; a fresh (empty) one the first time or if the log went back (another
    database at the same place)."""
    if remembered is not None:
        token = change_token(session, remembered.since)
        if token.highest == remembered.highest and token.recent == len(remembered.seen):
            return remembered
        if token.highest < remembered.highest:
            remembered = None
    if remembered is None:
        window = _late_commit_window(session)
        recent = select(func.coalesce(func.max(col(Event.id)), 0) - window).scalar_subquery()
        ids = session.scalars(select(col(Event.id)).where(col(Event.id) >= recent)).all()
        return _advanced(0, [(i, None) for i in ids if i is not None], {}, window)
    rows = session.execute(
        select(col(Event.id), col(Event.ticket_id), col(Event.kind)).where(
            col(Event.id) > remembered.since
        )
    ).all()
    unseen = [(t, kind) for i, t, kind in rows if i not in remembered.seen]
    changed = {t for t, _ in unseen if t is not None}
    if len(unseen) > MAX_CHANGES or any(kind in FORGETS_ALL for _, kind in unseen):
        days: Mapping[Day, Mapping[str, int]] = {}
    else:
        days = _unchanged_days(session, remembered.days, changed)
    rows_read = [(i, t) for i, t, _ in rows]
    return _advanced(remembered.since, rows_read, days, _late_commit_window(session))


def _late_commit_window(session: Session) -> int:
    """How far below the highest event id a commit may still appear: PostgreSQL takes ids
    from a sequence and commits in any order; SQLite's one writer at a time commits its ids
    in order, so its token is the highest id alone (one index step, not a thousand rows)."""
    return LATE_COMMIT_WINDOW if session.get_bind().dialect.name == "postgresql" else 0


def _advanced(
    since: int,
    rows: Sequence[tuple[int, int | None]],
    days: Mapping[Day, Mapping[str, int]],
    window: int,
) -> _Remembered:
    """Remembered as of the events ``rows`` (every event above ``since``)."""
    highest = max((i for i, _ in rows), default=since)
    since = max(since, highest - window)
    return _Remembered(highest, since, frozenset(i for i, _ in rows if i > since), days)


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
    """Each day's counts, one statement per run of consecutive days (a CASE numbers the day)."""
    found: dict[Day, dict[str, int]] = {day: {} for day in days}
    for run in _runs(days):
        within = [col(Ticket.created_at) >= run[0][0], col(Ticket.created_at) < run[-1][1]]
        if len(run) == 1:
            found[run[0]] = dict(grouped(session, [*where, *within]))
            continue
        number = _day_number(run, 0, len(run)).label("day_number")
        statement = (
            select(number, STATUS, func.count()).where(*where, *within).group_by(number, STATUS)
        )
        for n, status, count in session.execute(statement):
            found[run[n]][status] = count
    return found


def _day_number(run: Sequence[Day], first: int, end: int) -> Any:
    """Which of ``run[first:end]`` a ticket was created on: CASEs nested as a binary search
    (a month is five comparisons a ticket, not thirty)."""
    if end - first == 1:
        return literal(first)
    middle = (first + end) // 2
    return case(
        (col(Ticket.created_at) < run[middle][0], _day_number(run, first, middle)),
        else_=_day_number(run, middle, end),
    )


def _runs(days: Iterable[Day]) -> list[list[Day]]:
    runs: list[list[Day]] = []
    for day in days:
        if runs and runs[-1][-1][1] == day[0]:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def grouped(session: Session, where: Sequence[ColumnElement[bool]]) -> list[tuple[str, int]]:
    statement = select(STATUS, func.count()).where(*where).group_by(STATUS)
    return [(status, count) for status, count in session.execute(statement)]
