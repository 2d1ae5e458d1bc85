"""Optimistic concurrency on tickets (issue 16, item 5): the version a writer read, checked.

Every write of a ticket row bumps ``ticket.version``: the ORM through the mapper's
``version_id_col`` (``models.TICKET_VERSION``: its UPDATE says ``WHERE version = <read>`` and
fails with StaleDataError when someone wrote in between), and every Core UPDATE of ``ticket``
with ``NEXT_VERSION`` (the pull, auto-assignment, undo-pull). Not the desk's 'nearly next'
mark (``engine.near_front``: a one-time note that the customer was told, which nobody edits):
bumping it would refuse an expert's save because a check-in moved the line.

A writer that showed the ticket to someone passes the version it showed (``if_version``):
``check_version`` refuses a stale one with one line naming the latest change from the log,
who and how long ago ("Kenji changed status to resolved 20 s ago; reload and try again").
Comments and replies take no version: adding to the conversation never contradicts a change,
so they are let through (they still bump the version: a later update is told about them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from cxdesk.errors import Conflict
from cxdesk.store.models import Event, Ticket, User, utcnow

NEXT_VERSION: Any = col(Ticket.version) + 1
"""What a Core UPDATE of ``ticket`` sets ``version`` to."""

GROUPED_SECONDS = 2
"""Log lines by one actor this close to the latest one are the same write (one update logs a
line per field and one for its comment)."""

FIELD_KINDS = {"ticket.status_changed", "ticket.updated", "ticket.owner_changed"}
PLAIN_KINDS = {
    "ticket.created": "created it",
    "ticket.commented": "added a note",
    "ticket.replied": "replied to the customer",
    "ticket.assigned_from_queue": "pulled it",
    "ticket.escalated": "escalated it",
    "ticket.escalation_step": "moved its escalation step",
    "ticket.recalled": "recalled the customer",
    "ticket.pull_undone": "put it back in its queue",
    "ticket.feedback": "left feedback",
    "message.received": "wrote",
}


class StaleVersion(Conflict):
    """A write based on a version someone changed since; ``current`` is the stored one."""

    def __init__(self, message: str, current: int) -> None:
        super().__init__(message)
        self.current = current


def check_version(
    session: Session, ticket: Ticket, if_version: int | None, *, now: datetime | None = None
) -> None:
    """Refuse the write (``StaleVersion``) unless ``if_version`` is None or the ticket's
    version; read the ticket locked first (``get_ticket(lock=True)``) so no write slips in."""
    if if_version is None or ticket.version == if_version:
        return
    if if_version > ticket.version or if_version < 1:
        raise StaleVersion(
            f"{ticket.key} has no version {if_version} (it is at {ticket.version}); "
            "reload and try again",
            ticket.version,
        )
    latest = latest_change(session, ticket, now=now or utcnow())
    more = ticket.version - if_version - 1
    also = f", and {more} more change{'s' if more > 1 else ''}" if more > 0 else ""
    raise StaleVersion(f"{latest}{also}; reload and try again", ticket.version)


def latest_change(session: Session, ticket: Ticket, *, now: datetime) -> str:
    """The ticket's latest write in words from its log: who, what, how long ago."""
    recent = session.exec(
        select(Event)
        .where(Event.ticket_id == ticket.id, col(Event.kind).in_(FIELD_KINDS | set(PLAIN_KINDS)))
        .order_by(col(Event.id).desc())
        .limit(20)
    ).all()
    if not recent:
        return f"Someone changed {ticket.key}"
    last = recent[0]
    write = [
        e
        for e in recent
        if e.actor_id == last.actor_id
        and abs((last.created_at - e.created_at).total_seconds()) <= GROUPED_SECONDS
    ]
    fields = [e for e in reversed(write) if e.kind in FIELD_KINDS and e.field_name]
    if fields:
        what = "changed " + ", ".join(f"{e.field_name} to {e.to_value or 'nobody'}" for e in fields)
    else:
        what = PLAIN_KINDS[last.kind]
    actor = session.get(User, last.actor_id) if last.actor_id is not None else None
    who = (actor.name or actor.username) if actor else "The desk"
    if actor is None and last.kind == "message.received":
        who = "The customer"
    return f"{who} {what} {ago(last.created_at, now)}"


def ago(then: datetime, now: datetime) -> str:
    """``just now``, ``20 s ago``, ``3 min ago``, ``2 h ago``, ``4 days ago``."""
    seconds = int((now - then).total_seconds())
    if seconds < 1:
        return "just now"
    if seconds >= 86400:
        days = seconds // 86400
        return f"{days} day{'s' if days > 1 else ''} ago"
    for size, unit in ((3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"
