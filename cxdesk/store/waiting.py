"""The waiting room: where each waiting ticket stands in its queue and how long it may wait.

A ticket waits in its team's queues (unowned, in an open status: ``pull.WAITING``); a team may
have several queues, each with its own order. Its **position** is its place in a queue's order
(``pull.queue_order``: oldest first, or priority then oldest), so position 1 is what a pull of
that queue takes next. A ticket's own position (``ticket_wait``: ``ticket show``, piped text)
is the one in its team's first queue (lowest id): the queue the team was given first.

The **estimate** comes from three things read from the desk, never stored:

- the team's pace: the handle time (pull -> resolved: the ticket's last
  ``ticket.assigned_from_queue`` event before its ``resolved_at``) as an exponentially weighted
  average over the team's last handled tickets, newest weighing most (``HANDLE_WEIGHT``);
  "unknown" (None) below the desk setting ``estimate_min_handled`` handled tickets (default 5);
- the experts available: ``available_experts``, the team's active members whose presence is
  available (``store.presence``); each is free now, or when the ticket they are on should end
  (its pull + the handle time);
- the people ahead: the customers in front are handed, in order, to whichever expert frees up
  first; a customer's wait is when an expert frees up for them.

No available expert is "unknown" too. Everything takes ``now=`` (default ``utcnow()``), so a
simulated day (``benchmarks/estimate.py``) reads the desk as it stood at any instant. A whole
queue costs four statements however many wait (``queue_waiting``).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate, repeat
from typing import Any, NamedTuple

from sqlalchemy import bindparam, case, func, true, tuple_
from sqlalchemy import select as sa_select
from sqlalchemy.sql.util import ClauseAdapter
from sqlmodel import Session, col, select

from cxdesk.i18n import N_, _, ngettext
from cxdesk.store.definitions import QueueDefinition, desk_definitions
from cxdesk.store.directory import whole_number_setting
from cxdesk.store.lean import wait_short as wait_short  # the queues screen draws before the store
from cxdesk.store.models import (
    Event,
    Queue,
    QueueOrder,
    Status,
    StatusCategory,
    Team,
    Ticket,
    utcnow,
)
from cxdesk.store.prepared import Prepared
from cxdesk.store.presence import members_available_since, presence_timeout
from cxdesk.store.pull import WAITING, queue_order
from cxdesk.store.tickets import QueueStats, queue_overview
from cxdesk.store.tickets import _aware as aware

MIN_HANDLED_SETTING = "estimate_min_handled"
DEFAULT_MIN_HANDLED = 5
HANDLE_WEIGHT = 0.1
"""Weight of the newest handled ticket in the average (the one before weighs 0.1 x 0.9...): the
last 22 carry 90%. Handle times spread widely (a one-minute password reset, a forty-minute
dashboard), so a heavier weight swings with each odd ticket; a lighter one lags a team's change
of pace (an afternoon's slowdown). On the simulated days of ``benchmarks/estimate.py`` (seeds
15-16, 694 customers) the median error was 5.07 min at 0.05, 4.54 at 0.1, 4.75 at 0.15, 5.09 at
0.2 and 5.86 at 0.4 (naive: 24.7)."""
HANDLE_HISTORY = 50
"""Handled tickets read: the older ones would weigh 0.9^50 (0.5%) together."""
HISTORY_SPAN = timedelta(days=2)
"""Only tickets created this recently count: yesterday's pace still says something this
morning; last month's does not (and the read stays on the team's recent index range)."""
OVERDUE_SHARE = 0.25
"""An expert past the usual handle time on the current ticket is expected to need this share
of a handle time more (not zero: they are visibly not done)."""
PULLED_KIND = "ticket.assigned_from_queue"
UNKNOWN_WORDS = N_("not known yet")
LONGEST_SAID = 4 * 60
"""Minutes: a longer estimate is said as "more than 4 hours"."""


# -- the pace of a team -----------------------------------------------------------------------


@dataclass(frozen=True)
class Expert:
    """An expert counted as available, and since when they are on their current ticket."""

    user_id: int
    busy_since: datetime | None
    """The pull of the open ticket they work on (the latest one); None: free now."""


@dataclass(frozen=True)
class Pace:
    """How fast a team serves its queue now: what every estimate of its queues is made of."""

    handled: int
    """Handled tickets read (at most ``HANDLE_HISTORY``)."""
    handle_minutes: float | None
    """The weighted average handle time; None below the desk's history threshold."""
    free_in: tuple[float, ...]
    """Per available expert, minutes from now until they can take the next customer."""

    @property
    def known(self) -> bool:
        return self.handle_minutes is not None and bool(self.free_in)

    def waits(self, count: int) -> list[float | None]:
        """The estimated wait, in minutes, of positions 1..count (None: unknown)."""
        if not self.known or count <= 0:
            return [None] * max(count, 0)
        assert self.handle_minutes is not None
        handle = self.handle_minutes
        free = list(self.free_in)
        heapq.heapify(free)
        found: list[float | None] = []
        if len(free) == 1:  # one expert: each next customer one handle time later (the same
            return list(accumulate(repeat(handle, count - 1), initial=free[0]))  # sums)
        for _position in range(count):
            start = free[0]
            found.append(start)
            heapq.heapreplace(free, start + handle)
        return found

    def wait(self, position: int) -> float | None:
        """The estimated wait of the customer at ``position`` (1 is next)."""
        return self.waits(position)[-1] if position > 0 else None


def min_handled(session: Session) -> int:
    """The desk's history threshold (setting ``estimate_min_handled``, default 5)."""
    return whole_number_setting(session, MIN_HANDLED_SETTING, DEFAULT_MIN_HANDLED)


def _aware(value: Any) -> datetime:
    """SQLite hands back aggregates as text without a zone: aware UTC, like every column."""
    found = aware(value)
    assert found is not None
    return found


def _last_pull(before: Any) -> Any:
    """The ticket's (the enclosing query's ``Ticket``) last pull from a queue up to ``before``
    (a column of the enclosing query), through its own log lines (``ix_event_ticket``: the log
    has no index on kind or time)."""
    return (
        sa_select(func.max(Event.created_at))
        .where(
            col(Event.ticket_id) == col(Ticket.id),
            col(Event.kind) == PULLED_KIND,
            col(Event.created_at) <= before,
        )
        .correlate_except(Event)
        .scalar_subquery()
    )


def _handled_statement() -> Prepared:
    resolved = sa_select(col(Status.name)).where(col(Status.category) == StatusCategory.resolved)
    recent = (
        sa_select(col(Ticket.id), col(Ticket.resolved_at))
        .where(
            col(Ticket.team_id) == bindparam("team"),
            col(Ticket.status).in_(resolved),  # (team, status, created): ix_ticket_team_status
            col(Ticket.created_at) >= bindparam("since"),
            col(Ticket.resolved_at) <= bindparam("now"),
        )
        .order_by(col(Ticket.resolved_at).desc())
        .limit(HANDLE_HISTORY * 2)  # some were never pulled (opened resolved, or assigned)
        .subquery()
    )
    return Prepared(
        sa_select(recent.c.resolved_at, _last_pull(recent.c.resolved_at))
        .select_from(Ticket)
        .join(recent, recent.c.id == col(Ticket.id))
        .order_by(recent.c.resolved_at.desc())
    )


_HANDLED = _handled_statement()
_AVAILABLE = members_available_since(bindparam("team"), bindparam("cutoff"))
_AVAILABLE_MEMBERS = Prepared(_AVAILABLE)
_BUSY = Prepared(
    sa_select(col(Ticket.owner_id), _last_pull(col(Ticket.updated_at)), col(Ticket.updated_at))
    .join(Status, col(Status.name) == col(Ticket.status))
    .where(
        col(Ticket.owner_id).in_(_AVAILABLE),
        col(Status.category) == StatusCategory.open,  # by ix_ticket_owner_created per member
    )
)
"""The statements of a team's pace, compiled once: a check-in's SMS reads it."""


def handle_times(session: Session, team_id: int, *, now: datetime) -> list[float]:
    """The team's last handled tickets' handle times (pull -> resolved), oldest first, in
    minutes: one statement."""
    rows = _HANDLED.rows(session, {"team": team_id, "since": now - HISTORY_SPAN, "now": now})
    minutes = [
        (_aware(resolved) - _aware(pulled)).total_seconds() / 60
        for resolved, pulled in rows
        if pulled is not None
    ][:HANDLE_HISTORY]
    return minutes[::-1]


def weighted_handle(minutes: Sequence[float], weight: float = HANDLE_WEIGHT) -> float | None:
    """The exponentially weighted average of ``minutes`` (oldest first); None when empty."""
    average: float | None = None
    for value in minutes:
        average = value if average is None else weight * value + (1 - weight) * average
    return average


def available_experts(
    session: Session, team_id: int, *, now: datetime, members: list[int] | None = None
) -> list[Expert]:
    """The team's experts available now (``store.presence``: available, and their desk still
    beating), and the pull of the open ticket each is on (the latest; None: free).
    ``members``: the ids of the team's members available at ``now``, if already read."""
    values = {"team": team_id, "cutoff": now - presence_timeout(session)}
    if members is None:
        members = [user_id for (user_id,) in _AVAILABLE_MEMBERS.rows(session, values)]
    if not members:  # no one to be busy
        return []
    busy: dict[int, datetime] = {}
    for owner_id, pulled, updated in _BUSY.rows(session, values):
        start = _aware(pulled if pulled is not None else updated)
        busy[owner_id] = max(busy.get(owner_id, start), start)
    return [Expert(user_id, busy.get(user_id)) for user_id in sorted(members)]


def team_pace(
    session: Session,
    team_id: int,
    *,
    now: datetime | None = None,
    experts: list[Expert] | None = None,
) -> Pace:
    """The team's pace at ``now``: handle time, and when each available expert is free
    (``experts``: the team's ``available_experts`` at ``now``, if already read)."""
    now = now or utcnow()
    if experts is None:
        experts = available_experts(session, team_id, now=now)
    handled = handle_times(session, team_id, now=now)
    handle = weighted_handle(handled) if len(handled) >= min_handled(session) else None
    free_in: list[float] = []
    for expert in experts:
        if expert.busy_since is None or handle is None:
            free_in.append(0.0)
            continue
        spent = (now - expert.busy_since).total_seconds() / 60
        free_in.append(max(handle - spent, handle * OVERDUE_SHARE))
    return Pace(len(handled), handle, tuple(free_in))


# -- positions ----------------------------------------------------------------------------------


class WaitingTicket(NamedTuple):
    """One waiting ticket's place in a queue and its estimated wait (None: unknown). A tuple:
    a queue of 10,000 makes 10,000 of them (a frozen dataclass took 3x the queue's read)."""

    ticket_id: int
    key: str
    queue: str
    position: int
    wait_minutes: float | None


def _waiting_in(team_id: int) -> Any:
    return WAITING.params(team=team_id)


def queue_waiting(
    session: Session, queue_name: str, *, now: datetime | None = None
) -> list[WaitingTicket]:
    """Every ticket waiting in the queue, in the order its pulls take them, with estimates."""
    queue = session.exec(select(Queue).where(Queue.name == queue_name)).first()
    if queue is None:
        return []
    by_priority = queue.ordering == QueueOrder.priority
    rows = session.execute(
        _waiting_in(queue.team_id).add_columns(col(Ticket.key)).order_by(*queue_order(by_priority))
    ).all()
    waits = team_pace(session, queue.team_id, now=now).waits(len(rows))
    name = queue.name  # an ORM attribute: read once, not once per waiting ticket
    return [
        WaitingTicket(ticket_id, key or "", name, position, wait)
        for position, ((ticket_id, key), wait) in enumerate(zip(rows, waits, strict=True), 1)
    ]


def ticket_queue(session: Session, team_id: int) -> QueueDefinition | None:
    """The queue a ticket of the team is placed in: the team's first (lowest id)."""
    return desk_definitions(session).first_queues.get(team_id)


def _position_statement(by_priority: bool) -> Prepared:
    """The waiting tickets of the team up to ``ticket`` in the queue's order (its position:
    the order ends with the id, so no two tickets tie); no row when ``ticket`` itself is not
    waiting. A count along ``ix_ticket_waiting``, not a numbering of the whole queue.

    With it, in the same statement (one round trip on PostgreSQL), the team's members
    available now (``available_experts``'s first read): a row per member with the position,
    one row with no member when none is available."""
    me = Ticket.__table__.alias("me")  # type: ignore[attr-defined]
    order = [getattr(e, "__clause_element__", lambda e=e: e)() for e in queue_order(by_priority)]
    mine = [ClauseAdapter(me).traverse(e) for e in order]
    position = (
        WAITING.with_only_columns(func.count().label("position"))
        .join(me, me.c.id == bindparam("ticket"))
        .where(tuple_(*order) <= tuple_(*mine))
        .having(func.sum(case((col(Ticket.id) == me.c.id, 1), else_=0)) == 1)
        .subquery("position")
    )
    members = _AVAILABLE.subquery("members")
    return Prepared(
        sa_select(position.c.position, members.c.user_id).select_from(
            position.outerjoin(members, true())
        )
    )


_POSITIONS = {by_priority: _position_statement(by_priority) for by_priority in (False, True)}
"""A waiting ticket's position in its team's queue, and the team's members available (binds
``team``, ``ticket``, ``cutoff``), per order."""


def ticket_wait(
    session: Session, ticket: Ticket, *, now: datetime | None = None
) -> WaitingTicket | None:
    """Where ``ticket`` stands in its team's first queue; None when it is not waiting (owned,
    resolved) or its team has no queue."""
    if ticket.owner_id is not None or ticket.id is None:
        return None
    queue = ticket_queue(session, ticket.team_id)
    if queue is None:
        return None
    now = now or utcnow()
    rows = _POSITIONS[queue.ordering == QueueOrder.priority].rows(session, {
        "team": ticket.team_id, "ticket": ticket.id,
        "cutoff": now - presence_timeout(session),
    })  # fmt: skip
    if not rows:  # in a resolved status
        return None
    position = rows[0][0]
    members = [user_id for _position, user_id in rows if user_id is not None]
    experts = available_experts(session, ticket.team_id, now=now, members=members)
    # No one available: unknown, whatever the team's history (not read then).
    pace = team_pace(session, ticket.team_id, now=now, experts=experts) if experts else None
    wait = pace.wait(int(position)) if pace is not None else None
    return WaitingTicket(ticket.id, ticket.key or "", queue.name, int(position), wait)


# -- every queue at a glance ----------------------------------------------------------------


@dataclass(frozen=True)
class QueueOutlook:
    """A queue as ``cxdesk queue list`` and the queues screen show it: its counts, and the
    position and estimated wait of the next customer to join it."""

    stats: QueueStats
    next_position: int
    next_wait: float | None


def queue_outlooks(session: Session, *, now: datetime | None = None) -> list[QueueOutlook]:
    """Every queue (by name) with the next customer's position and estimate; each team's pace
    is read once."""
    now = now or utcnow()
    team_ids = {name: id_ for name, id_ in session.exec(select(Team.name, Team.id)) if id_}
    paces: dict[int, Pace] = {}
    found = []
    for stats in queue_overview(session):
        team_id = team_ids[stats.team]
        if team_id not in paces:
            paces[team_id] = team_pace(session, team_id, now=now)
        position = stats.waiting + 1
        found.append(QueueOutlook(stats, position, paces[team_id].wait(position)))
    return found


# -- in words ------------------------------------------------------------------------------------


def wait_in_words(minutes: float | None) -> str:
    """An estimate as a customer reads it, in the current language: "about 15 minutes";
    ``UNKNOWN_WORDS`` for None.

    Rounded as a person would say it: to the minute under 10 minutes, to 5 under an hour,
    to the quarter hour up to 4 hours; beyond, "more than 4 hours" (a day's queue is no
    promise to count in hours)."""
    if minutes is None:
        return _(UNKNOWN_WORDS)
    whole = round(minutes)
    if whole < 1:
        return _("less than a minute")
    if whole == 1:
        return _("about a minute")
    if whole >= 10 and whole < 58:
        whole = max(10, 5 * round(whole / 5))
    if whole < 58:
        return ngettext("about {n} minute", "about {n} minutes", whole).format(n=whole)
    if whole > LONGEST_SAID:
        hours = LONGEST_SAID // 60
        return ngettext("more than {n} hour", "more than {n} hours", hours).format(n=hours)
    quarters = max(4, round(whole / 15))
    hours, rest = divmod(quarters * 15, 60)
    if rest:
        return ngettext(
            "about {hours} hour {minutes} minutes", "about {hours} hours {minutes} minutes", hours
        ).format(hours=hours, minutes=rest)
    return ngettext("about {hours} hour", "about {hours} hours", hours).format(hours=hours)


def whole_minutes(minutes: float | None) -> int | None:
    """An estimate for machines (``estimated_wait_minutes``): whole minutes, or None."""
    return None if minutes is None else round(minutes)


def wait_fields(session: Session, ticket: Ticket) -> dict[str, int | None]:
    """``queue_position`` and ``estimated_wait_minutes`` for ``ticket show --json``: both None
    when the ticket is not waiting, the estimate None while it is unknown."""
    wait = ticket_wait(session, ticket)
    return {
        "queue_position": wait.position if wait else None,
        "estimated_wait_minutes": whole_minutes(wait.wait_minutes) if wait else None,
    }
