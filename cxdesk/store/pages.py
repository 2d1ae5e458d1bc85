"""Pages of the desk-wide screens besides the ticket list: kanban columns and cards, the event
stream and "my tickets" history (the hall board is ``store.hall``).

Like ``store.views``, every function returns one bounded page from one SELECT, never every
ticket, so the screens stay fast on a desk with 100,000 tickets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, union
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from cxdesk.errors import NotFound, PermissionDenied
from cxdesk.i18n import _
from cxdesk.store import day_counts
from cxdesk.store.directory import get_status, get_team, list_statuses
from cxdesk.store.events import KINDS
from cxdesk.store.models import Event, Role, Team, Ticket, User, utcnow
from cxdesk.store.sla_display import SlaTimes, sla_times
from cxdesk.store.views import PAGE_SIZE, PageRead, all_dates

_CURRENT = aliased(Team, name="current_team")
_OWNER = aliased(User, name="owner_user")
_ACTOR = aliased(User, name="actor_user")
_REQUESTER = aliased(User, name="requester_user")


# -- kanban ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KanbanColumn:
    status: str
    category: str
    count: int


@dataclass(frozen=True)
class Card:
    key: str
    customer_name: str
    owner: str | None
    priority: str
    status: str
    created_at: datetime
    sla: SlaTimes | None = None
    """The ticket's SLA columns (None: no policy); ``SlaTimes.view`` gives its state."""
    version: int | None = None
    """The ticket's version as read: a move of the card is refused if it changed since."""


def kanban_columns(
    session: Session, *, team: str | None = None, now: datetime | None = None
) -> list[KanbanColumn]:
    """One column per status (new, open, escalated, resolved, then custom), with its count;
    ``closed`` is left out: closed tickets are done with.

    In a read session every past ticket is counted once per process in buckets of days,
    months and the far past (``views.all_dates``), remembered until one of a bucket's tickets
    changes (``store.day_counts``); today's are counted each time. Other reads count every
    ticket."""
    team_id = get_team(session, team).id if team else None
    where = [] if team_id is None else [col(Ticket.team_id) == team_id]
    counts: Mapping[str, int]
    if day_counts.can_remember(session):
        days, rest = all_dates(now or utcnow())
        key = ("kanban", team_id)
        counts = day_counts.counts(session, where, key=key, days=days, rest=rest)
    else:
        counts = dict(day_counts.grouped(session, where))
    statuses = [s for s in list_statuses(session) if s.name != "closed"]
    builtin = [s for s in statuses if s.builtin]
    custom = [s for s in statuses if not s.builtin]
    return [KanbanColumn(s.name, s.category, counts.get(s.name, 0)) for s in builtin + custom]


def kanban_page(
    session: Session,
    status: str,
    *,
    team: str | None = None,
    offset: int = 0,
    limit: int = PAGE_SIZE,
    total: int | None = None,
) -> list[Card]:
    """One page of a column's cards, oldest first; ``total``: the column's count
    (``KanbanColumn.count``), so that a page past the middle is read from the newest end."""
    statement = (
        sa_select(
            col(Ticket.key),
            col(Ticket.customer_name),
            col(_OWNER.username),
            col(Ticket.priority),
            col(Ticket.status),
            col(Ticket.created_at),
            col(Ticket.version),
            *SlaTimes.columns(),
        )
        .outerjoin(_OWNER, col(_OWNER.id) == col(Ticket.owner_id))
        .where(col(Ticket.status) == get_status(session, status).name)
    )
    if team:
        statement = statement.where(col(Ticket.team_id) == get_team(session, team).id)
    # Oldest first, by id (the order tickets were created in): the status index holds the
    # ids in order, so a page of 50 reads 50 index entries even in a column of 30,000.
    read = PageRead.of(offset, limit, total)
    statement = statement.order_by(col(Ticket.id).desc() if read.backwards else col(Ticket.id))
    rows = read.rows(session.execute(statement.offset(read.offset).limit(read.limit)).all())
    return [
        Card(
            row[0], row[1], row[2], row[3], row[4], row[5], sla=sla_times(row[7:]), version=row[6]
        )  # fmt: skip
        for row in rows
    ]


# -- the stream --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamEvent:
    id: int
    created_at: datetime
    kind: str
    ticket_key: str | None
    team: str | None
    actor: str | None
    field_name: str | None
    from_value: str | None
    to_value: str | None
    detail: str | None


def stream_page(
    session: Session,
    *,
    team: str | None = None,
    kind: str | None = None,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int = PAGE_SIZE,
) -> list[StreamEvent]:
    """Ticket events, newest first; ``before_id`` pages back, ``after_id`` gets what is new.

    A kind that the desk never writes is refused with the list of kinds. The log has no index
    on its kind or team (each pull would pay for it, migration 0007): the kind and team
    filters walk the log back from the newest event until they have a page.
    """
    statement = (
        sa_select(
            col(Event.id),
            col(Event.created_at),
            col(Event.kind),
            col(Ticket.key),
            col(_CURRENT.name),
            col(_ACTOR.username),
            col(Event.field_name),
            col(Event.from_value),
            col(Event.to_value),
            col(Event.detail),
        )
        .join(Ticket, col(Ticket.id) == col(Event.ticket_id))
        .join(_CURRENT, col(_CURRENT.id) == col(Ticket.team_id))
        .outerjoin(_ACTOR, col(_ACTOR.id) == col(Event.actor_id))
    )
    if team:
        team_id: Any = col(Ticket.team_id)
        if session.get_bind().dialect.name == "sqlite":
            # "+ 0": not through the ticket's team index, or SQLite (without statistics) reads
            # every event of the team's tickets and sorts them (100,000 tickets: 135 -> 0.3
            # ms). PostgreSQL walks the log back already, and plans worse with it.
            team_id = team_id + 0
        statement = statement.where(team_id == get_team(session, team).id)
    if kind := (kind or "").strip():
        if kind not in KINDS:
            raise NotFound(f"No event kind {kind!r}; kinds: {', '.join(sorted(KINDS))}")
        statement = statement.where(col(Event.kind) == kind)
    if before_id is not None:
        statement = statement.where(col(Event.id) < before_id)
    if after_id is not None:
        statement = statement.where(col(Event.id) > after_id)
    rows = session.execute(statement.order_by(col(Event.id).desc()).limit(limit)).all()
    return [StreamEvent(*row) for row in rows]


# -- history ("My tickets") --------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRow:
    key: str
    title: str
    created_at: datetime
    updated_at: datetime
    channel: str
    status: str
    user: str | None
    """Who submitted it (a username), else the customer's name."""


def history_page(
    session: Session,
    *,
    actor: User,
    organisation: bool = False,
    newest_first: bool = True,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> list[HistoryRow]:
    """Tickets the actor submitted or owns; an admin may ask for the whole organisation's."""
    if organisation and actor.role != Role.admin:
        raise PermissionDenied(_("Only an admin sees the organisation's tickets"))
    statement = sa_select(
        col(Ticket.key),
        col(Ticket.title),
        col(Ticket.created_at),
        col(Ticket.updated_at),
        col(Ticket.channel),
        col(Ticket.status),
        func.coalesce(col(_REQUESTER.username), col(Ticket.customer_name)),
    ).outerjoin(_REQUESTER, col(_REQUESTER.id) == col(Ticket.requester_id))
    created = col(Ticket.created_at)
    order = (created.desc(), col(Ticket.id).desc()) if newest_first else (created, col(Ticket.id))
    if not organisation:
        # Submitted or owned: the first offset + limit of each, from its own index in the page's
        # order (migration 0025, the history indexes), not every ticket of the actor sorted.
        def first_of(column: Any) -> Any:
            bounded = sa_select(col(Ticket.id)).where(column == actor.id).order_by(*order)
            return bounded.limit(max(0, offset) + limit).subquery()

        submitted, owned = first_of(col(Ticket.requester_id)), first_of(col(Ticket.owner_id))
        mine = union(sa_select(submitted.c.id), sa_select(owned.c.id))
        statement = statement.where(col(Ticket.id).in_(mine))
    rows = session.execute(statement.order_by(*order).offset(max(0, offset)).limit(limit)).all()
    return [HistoryRow(*row) for row in rows]
