"""Auto-assignment: a queue in ``auto`` mode (``cxdesk queue add|update --assign auto``) hands
out its waiting tickets itself, instead of waiting for an expert to pull.

Its next ticket (the queue's order, ``pull.queue_order``: what a pull would take) goes to the
available member of its team (``store.presence``) with the fewest open tickets, the one idle
longest on a tie (idle since the later of: becoming available, the last change to a ticket of
theirs), never to an expert who is away or on a break, nor to one already at their cap (their
own, else the desk setting ``max_open_tickets``: ``store.caps``; none: no cap). Nobody free:
the ticket waits.

The assignment is the pull's own write: the UPDATE sets ``ticket.pulled_from``, so the
database trigger ``ticket_pulled`` logs ``ticket.assigned_from_queue`` (actor: the expert) and
the new -> open change, and the same workflows (the customer's SMS and email naming the
expert) run after it commits (``engine.dispatch.auto_assign_and_dispatch``).

Atomic: each assignment is one short transaction that holds the desk's assignment lock while
it reads the loads and writes the ticket - on SQLite the write lock a transaction takes up
front (``BEGIN IMMEDIATE``), on PostgreSQL an advisory transaction lock - so two workers never
assign one ticket twice, nor both give the same expert a ticket on one stale count. A pull by
hand at the same instant may take the chosen ticket first: the UPDATE (``owner_id IS NULL``)
then changes nothing and the next pass looks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, text, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from cxdesk.store.caps import CAP_SETTING, effective_cap
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_setting
from cxdesk.store.models import (
    Presence,
    Queue,
    QueueAssign,
    QueueOrder,
    Status,
    StatusCategory,
    Ticket,
    User,
    utcnow,
)
from cxdesk.store.presence import available_members
from cxdesk.store.pull import WAITING, claimed, queue_order
from cxdesk.store.tickets import _aware as aware

ASSIGN_LOCK_KEY = 0x63786173
"""PostgreSQL advisory lock taken by every assignment transaction (``cxas``)."""
MAX_PER_PASS = 200
"""Assignments per ``auto_assign`` call: a bounded amount of work; the next pass goes on."""


@dataclass(frozen=True)
class Assigned:
    """A ticket the desk gave an expert (committed, its events not yet dispatched)."""

    id: int
    key: str
    queue: str
    username: str


def _owned(*where: Any) -> Any:
    return (
        sa_select(func.count(col(Ticket.id)))
        .join(Status, col(Status.name) == col(Ticket.status))
        .where(col(Ticket.owner_id) == col(User.id), *where)
        .correlate(User)
        .scalar_subquery()
    )


def pick_expert(
    session: Session, team_id: int, *, now: datetime, desk_cap: str | None
) -> tuple[int, str] | None:
    """The team's available member with the fewest open tickets (idle longest on a tie,
    then the lowest id) under their cap (``store.caps``: their own, else ``desk_cap``, the
    desk's ``max_open_tickets``): (user id, username), or None when nobody is free."""
    open_count = _owned(col(Status.category) == StatusCategory.open)
    last_work = (
        sa_select(func.max(col(Ticket.updated_at)))
        .where(col(Ticket.owner_id) == col(User.id))
        .correlate(User)
        .scalar_subquery()
    )
    rows = session.execute(
        sa_select(
            col(User.id),
            col(User.username),
            col(User.max_open_tickets),
            open_count,
            last_work,
            col(Presence.since),
        )
        .join(Presence, col(Presence.user_id) == col(User.id))
        .where(col(User.id).in_(available_members(session, team_id, now=now)))
    ).all()
    ranked = []
    for user_id, username, own_cap, count, worked, since in rows:
        cap = effective_cap(own_cap, desk_cap)
        if cap is not None and count >= cap:
            continue
        became = aware(since)
        assert became is not None
        idle_since = max(became, aware(worked) or became)
        ranked.append((int(count), idle_since, int(user_id), str(username)))
    if not ranked:
        return None
    _count, _idle, user_id, username = min(ranked)
    return user_id, username


def _give(session: Session, ticket_id: int, user_id: int, queue: str, now: datetime) -> str | None:
    """The pull's write for someone else: the ticket's key, or None if it was taken first."""
    row = session.execute(
        update(Ticket)
        .where(col(Ticket.id) == ticket_id, col(Ticket.owner_id).is_(None))
        .values(**claimed(user_id, now, queue))
        .returning(col(Ticket.key))
    ).first()
    return None if row is None else str(row[0])


def has_auto_queues(engine: Engine) -> bool:
    """Whether any queue is in auto mode (a read: takes no write lock on SQLite)."""
    with read_session(engine) as session:
        found = select(Queue.id).where(Queue.assign == QueueAssign.auto).limit(1)
        return session.exec(found).first() is not None


def assign_one(engine: Engine, *, now: datetime | None = None) -> tuple[Assigned | None, bool]:
    """One assignment, committed: (what was assigned or None, whether to look again - a
    ticket was given, or one was taken by a pull in between)."""
    with transaction(engine) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ASSIGN_LOCK_KEY})
        at = now or utcnow()
        cap = get_setting(session, CAP_SETTING)
        queues = session.exec(
            select(Queue).where(Queue.assign == QueueAssign.auto).order_by(col(Queue.id))
        ).all()
        raced = False
        for queue in queues:
            by_priority = queue.ordering == QueueOrder.priority
            ticket_id = session.execute(
                WAITING.params(team=queue.team_id).order_by(*queue_order(by_priority)).limit(1)
            ).scalar_one_or_none()
            if ticket_id is None:
                continue
            expert = pick_expert(session, queue.team_id, now=at, desk_cap=cap)
            if expert is None:
                continue
            key = _give(session, ticket_id, expert[0], queue.name, at)
            if key is None:
                raced = True
                continue
            return Assigned(ticket_id, key, queue.name, expert[1]), True
        return None, raced


def auto_assign(engine: Engine, *, now: datetime | None = None) -> list[Assigned]:
    """Assign every auto queue's waiting tickets while an available member is free (at most
    ``MAX_PER_PASS``); each assignment commits on its own."""
    if not has_auto_queues(engine):
        return []
    found: list[Assigned] = []
    for _attempt in range(MAX_PER_PASS):
        assigned, again = assign_one(engine, now=now)
        if assigned is not None:
            found.append(assigned)
        if not again:
            break
    return found
