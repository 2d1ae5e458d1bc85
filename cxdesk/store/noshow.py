"""No-show: the expert called the customer of a pulled ticket and nobody came.

``no_show`` (``cxdesk ticket noshow KEY``, the ticket screen's key) either **recalls** the
customer or, past the desk's limit, **resolves the ticket as no-show**:

- a recall puts the ticket back at the head of its queue (owner cleared, ``queue_band`` 0:
  ``store.pull.queue_order`` hands it out before every other waiting ticket, so it is the next
  one pulled; several recalled tickets go oldest first), counts it (``recalls``) and records
  ``ticket.recalled``, whose workflows text the customer ("we called you": the demo desk's
  "Recalled: tell the customer");
- once the customer has been recalled ``noshow_recalls`` times (desk setting, default 2), the
  next no-show resolves the ticket in the status ``no-show`` (category resolved, made here if
  the desk has none), with its owner kept: the log says who called. The demo desk's CSAT
  workflow asks about tickets resolved as ``resolved`` only, so no survey goes out.

Only the ticket's owner or an admin may do it, and only on an open ticket someone owns.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from cxdesk.errors import Conflict, PermissionDenied
from cxdesk.i18n import N_, _
from cxdesk.store.directory import whole_number_setting
from cxdesk.store.events import record_event
from cxdesk.store.models import Role, Status, StatusCategory, Ticket, User, utcnow
from cxdesk.store.tickets import change_status, get_ticket, require_staff

RECALLS_SETTING = "noshow_recalls"
DEFAULT_RECALLS = 2
NOSHOW_STATUS = "no-show"


@dataclass(frozen=True)
class NoShow:
    """What a no-show did to the ticket."""

    key: str
    recalls: int
    """The customer's recalls so far."""
    resolved: bool
    """True: resolved as no-show; False: recalled to the head of the queue."""


def recall_limit(session: Session) -> int:
    """How many times a customer is recalled before a no-show resolves the ticket."""
    return whole_number_setting(session, RECALLS_SETTING, DEFAULT_RECALLS)


def noshow_status(session: Session) -> Status:
    """The status ``no-show`` (resolved), made the first time a desk needs it."""
    status = session.exec(select(Status).where(Status.name == NOSHOW_STATUS)).first()
    if status is None:
        last = session.exec(select(Status).order_by(Status.position.desc())).first()  # type: ignore[attr-defined]
        status = Status(name=NOSHOW_STATUS, category=StatusCategory.resolved,
                        position=(last.position + 1) if last else 0)  # fmt: skip
        session.add(status)
        session.flush()
    elif status.category != StatusCategory.resolved:
        raise Conflict(
            _("The status {noshow_status!r} is not a resolved status on this desk").format(
                noshow_status=NOSHOW_STATUS
            )
        )
    return status


def put_back_at_head(session: Session, actor: User | None, ticket: Ticket) -> None:
    """Unassign ``ticket`` and put it at the head of its queue (``ticket.owner_changed``)."""
    previous = session.get(User, ticket.owner_id) if ticket.owner_id else None
    now = utcnow()
    ticket.owner_id = None
    ticket.queue_band = 0
    ticket.updated_at = now
    session.add(ticket)
    session.flush()
    record_event(
        session,
        kind="ticket.owner_changed",
        actor=actor,
        ticket_id=ticket.id,
        field_name="owner",
        from_value=previous.username if previous else None,
    )


def no_show(session: Session, *, actor: User, key: str) -> NoShow:
    """Recall the customer of ``key`` (back to the head of the queue, texted), or resolve the
    ticket as no-show once they were recalled ``noshow_recalls`` times."""
    require_staff(actor, N_("mark a no-show"))
    ticket = get_ticket(session, key, lock=True)
    status = session.exec(select(Status).where(Status.name == ticket.status)).one()
    if status.category != StatusCategory.open:
        raise Conflict(
            _("{key} is {status}: only an open ticket can be a no-show").format(
                key=ticket.key, status=ticket.status
            )
        )
    if ticket.owner_id is None:
        raise Conflict(
            _("{key} is waiting in its queue: pull it before a no-show").format(key=ticket.key)
        )
    if ticket.owner_id != actor.id and actor.role != Role.admin:
        raise PermissionDenied(
            _("{key} is not yours: only its owner or an admin can").format(key=ticket.key)
        )
    if ticket.recalls >= recall_limit(session):
        change_status(session, actor, ticket, noshow_status(session))
        return NoShow(ticket.key or "", ticket.recalls, resolved=True)
    ticket.recalls += 1
    put_back_at_head(session, actor, ticket)
    record_event(session, kind="ticket.recalled", actor=actor, ticket_id=ticket.id,
                 field_name="recalls", from_value=ticket.recalls - 1,
                 to_value=ticket.recalls)  # fmt: skip
    return NoShow(ticket.key or "", ticket.recalls, resolved=False)
