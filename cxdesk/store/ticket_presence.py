"""Presence on a ticket (issue 16, item 6): who else has it open now, viewing or editing.

Each open ticket screen beats about once a second (``beat``): it writes its own row of
``ticket_viewer`` (ticket, terminal, user, mode, heartbeat time), deletes the rows that stopped
beating, and reads the others'. A row whose heartbeat is older than ``STALE_AFTER`` is someone
who left (a closed screen deletes its row at once, ``leave``; a killed terminal just stops
beating): it is never shown, then deleted by the next beat. Polling, on both databases: one
short transaction per open screen per second, on a table of a few rows.

The others are everyone but the caller: another user's terminals, not the caller's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from cxdesk.errors import ValidationFailed, must_be_one_of
from cxdesk.i18n import _
from cxdesk.store.models import Ticket, TicketViewer, User, utcnow

BEAT_SECONDS = 1.0
"""How often an open ticket screen beats."""
STALE_AFTER = timedelta(seconds=5)
"""A heartbeat older than this is someone who left (five missed beats)."""
MODES = ("viewing", "editing")


@dataclass(frozen=True)
class Viewer:
    """Someone else on the ticket: their name and what they are doing."""

    name: str
    mode: str


def beat(
    session: Session,
    *,
    key: str,
    user_id: int,
    terminal: str,
    mode: str,
    now: datetime | None = None,
) -> list[Viewer]:
    """Write this terminal's heartbeat on ticket ``key``, forget stale rows, and return the
    other users on it (editing first, then by name)."""
    if mode not in MODES:
        raise ValidationFailed({"mode": must_be_one_of(MODES)})
    now = now or utcnow()
    ticket_id = session.exec(select(Ticket.id).where(Ticket.key == key)).first()
    if ticket_id is None:
        return []
    session.execute(delete(TicketViewer).where(col(TicketViewer.heartbeat_at) < now - STALE_AFTER))
    mine = (col(TicketViewer.ticket_id) == ticket_id, col(TicketViewer.terminal) == terminal)
    written = session.execute(
        update(TicketViewer).where(*mine).values(mode=mode, heartbeat_at=now, user_id=user_id)
    )
    if not written.rowcount:  # type: ignore[attr-defined]
        session.add(TicketViewer(ticket_id=ticket_id, terminal=terminal, user_id=user_id,
                                 mode=mode, heartbeat_at=now))  # fmt: skip
    session.flush()
    return others(session, ticket_id=ticket_id, user_id=user_id, now=now)


def others(session: Session, *, ticket_id: int, user_id: int, now: datetime) -> list[Viewer]:
    """The other users with a live heartbeat on the ticket, one entry each (editing wins)."""
    rows = session.exec(
        select(User.name, User.username, TicketViewer.mode)
        .join(User, col(User.id) == col(TicketViewer.user_id))
        .where(
            col(TicketViewer.ticket_id) == ticket_id,
            col(TicketViewer.user_id) != user_id,
            col(TicketViewer.heartbeat_at) >= now - STALE_AFTER,
        )
    ).all()
    modes: dict[str, str] = {}
    for name, username, mode in rows:
        shown = name or username
        if modes.get(shown) != "editing":
            modes[shown] = mode
    return sorted((Viewer(n, m) for n, m in modes.items()), key=lambda v: (v.mode, v.name))


def leave(session: Session, *, key: str, terminal: str) -> None:
    """This terminal closed the ticket: its row goes at once."""
    ticket_id = select(Ticket.id).where(Ticket.key == key).scalar_subquery()
    session.execute(
        delete(TicketViewer).where(
            col(TicketViewer.ticket_id) == ticket_id, col(TicketViewer.terminal) == terminal
        )
    )


def viewers_line(viewers: list[Viewer]) -> str:
    """``Kenji is editing · Maya is viewing`` (empty when nobody else is there)."""
    return " · ".join(
        _("{name} is editing").format(name=v.name)
        if v.mode == "editing"
        else _("{name} is viewing").format(name=v.name)
        for v in viewers
    )
