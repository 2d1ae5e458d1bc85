""" "You're next": telling a waiting customer once, when their ticket nears the front of its queue.

A queue moves forward when a waiting ticket leaves it or goes ahead: a pull (``ticket.
assigned_from_queue``), an assignment or unassignment (``ticket.owner_changed``: a hand-off,
auto-assignment, an undone pull), a status change (a waiting ticket resolved) or a change of
team or priority (``ticket.updated``). Whatever writes these, the engine dispatches them
(``engine.dispatch.dispatch_event``), and for each it looks at the front of the ticket's team's
queue (and of the team it left): the waiting tickets at position ``near_front_position`` (desk
setting, default 2) or nearer that were never told get a ``ticket.near_front`` event, whose
workflows text the customer (the demo desk's "Near the front: tell the customer").

Positions are those of ``store.waiting.ticket_wait``: the team's first queue, in its order.

Once per ticket: ``ticket.near_front_at`` remembers it, set by a conditional UPDATE so two
dispatchers at once (two pulls on PostgreSQL) never both tell. That UPDATE holds the row of
the ticket it marks until the dispatch commits (milliseconds); a pull on PostgreSQL in that
instant skips the locked row (``SKIP LOCKED``). It is usually the ticket at position N, not 1:
the pull takes the next one as it should. A ticket recalled after a
no-show is never told: it is already at the head and its customer was just called
(``store.noshow``). A ticket that checked in at position N or nearer is told at the first
move of its queue while it still waits (its check-in SMS already gave its position).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col, select

from cxdesk.store import in_hand
from cxdesk.store.directory import whole_number_setting
from cxdesk.store.events import record_event
from cxdesk.store.models import Event, QueueOrder, Team, Ticket, utcnow
from cxdesk.store.pull import WAITING, queue_order
from cxdesk.store.waiting import ticket_queue

POSITION_SETTING = "near_front_position"
DEFAULT_POSITION = 2
QUEUE_MOVES = frozenset(
    {"ticket.assigned_from_queue", "ticket.owner_changed", "ticket.status_changed",
     "ticket.updated"}
)  # fmt: skip
"""Events after which a ticket may stand nearer the front than before."""


def near_front_position(session: Session) -> int:
    """The position at which a customer is told they are nearly next (0: never)."""
    return whole_number_setting(session, POSITION_SETTING, DEFAULT_POSITION)


def tell_near_front(session: Session, event: Event) -> list[int]:
    """After ``event``, the ids of the tickets just told they are near the front."""
    if event.kind not in QUEUE_MOVES or event.ticket_id is None:
        return []
    ticket = in_hand.get(session, Ticket, event.ticket_id)
    if ticket is None:
        return []
    team_ids = [ticket.team_id]
    if event.kind == "ticket.updated" and event.field_name == "team" and event.from_value:
        left = session.exec(select(Team.id).where(Team.name == event.from_value)).first()
        team_ids += [left] if left is not None and left != ticket.team_id else []
    return [told for team_id in team_ids for told in _tell_team(session, team_id)]


def _tell_team(session: Session, team_id: int) -> list[int]:
    limit = near_front_position(session)
    queue = ticket_queue(session, team_id)
    if queue is None or limit < 1:
        return []
    front = session.execute(
        WAITING.params(team=team_id)
        .add_columns(col(Ticket.recalls), col(Ticket.near_front_at))
        .order_by(*queue_order(queue.ordering == QueueOrder.priority))
        .limit(limit)
    ).all()
    told: list[int] = []
    for position, (ticket_id, recalls, told_at) in enumerate(front, start=1):
        if told_at is not None or recalls:
            continue
        marked = session.execute(
            update(Ticket)
            .where(col(Ticket.id) == ticket_id, col(Ticket.near_front_at).is_(None))
            .values(near_front_at=utcnow())
        )
        if marked.rowcount:  # type: ignore[attr-defined]
            record_event(session, kind="ticket.near_front", actor=None, ticket_id=ticket_id,
                         field_name="position", to_value=position, detail=queue.name)  # fmt: skip
            told.append(ticket_id)
    return told
