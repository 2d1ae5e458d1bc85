"""Undo a pull: the expert who just pulled a ticket puts it back, and its customer hears nothing.

Within ``UNDO_WINDOW`` of the pull (its ``ticket.assigned_from_queue`` line), the puller (still
its owner) may undo it (``cxdesk ticket unpull KEY``, ``u`` on the ticket screen). In one
transaction:

- the ticket loses its owner and gets back the status it had before the pull (new, or the
  open status it waited in). It keeps its ``created_at``, so it stands where it stood in its
  queue's order: at the head of an oldest-first queue if it was the next one (unless an older
  ticket came back meanwhile); in a priority queue, first among its priority (a more urgent
  ticket that arrived meanwhile is rightly before it). ``pulled_from`` is left as it is: only
  a pull sets it (that fires the ``ticket_pulled`` trigger);
- the pull's log lines not yet dispatched are marked dispatched, so no worker runs their
  workflows afterwards; on PostgreSQL they are locked first (``FOR UPDATE``), which waits for a
  dispatch running this instant to commit its outbox rows;
- the outbox rows written for the pull (for its log lines) that no deliverer has started
  sending (status ``pending``/``failed``, no ``sending_at``) become ``cancelled`` and lose
  their claim, so a deliverer holding them cannot mark them as being sent (``outbox``'s
  ``_MARK_SENDING`` needs the claim). One already being sent (``sending_at``) or sent cannot be
  called back: the answer says how many;
- the SLA's first response goes with it if the pull was it (``store.sla``);
- the log gets ``ticket.pull_undone`` with the owner and status lines, none of which runs a
  workflow (an undone pull sends nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from cxdesk.errors import Conflict, PermissionDenied
from cxdesk.i18n import _, ngettext
from cxdesk.store.events import record_event
from cxdesk.store.models import Event, OutboxMessage, Ticket, User, utcnow
from cxdesk.store.ticket_versions import NEXT_VERSION
from cxdesk.store.tickets import _aware, get_ticket

UNDO_WINDOW = timedelta(seconds=15)
"""How long after a pull the puller may put the ticket back: long enough to notice a wrong
key or queue, short enough that the customer's "your expert is coming" is still queued."""
PULLED_KIND = "ticket.assigned_from_queue"
CANCELLED = "cancelled"
UNSENT = ("pending", "failed")


@dataclass(frozen=True)
class Unpulled:
    """What an undone pull did."""

    key: str
    queue: str
    status: str
    """The status the ticket is back in."""
    cancelled: int
    """Customer messages cancelled (never sent)."""
    sending: int
    """Messages a deliverer had started sending: they may reach the customer."""
    sent: int
    """Messages already sent."""

    def summary(self) -> str:
        """The one-line answer: "EXP-3 is back in queue 360; 2 messages cancelled"."""
        n = self.cancelled
        parts = [
            ngettext(
                "{key} is back in queue {queue}; {n} message cancelled",
                "{key} is back in queue {queue}; {n} messages cancelled",
                n,
            ).format(key=self.key, queue=self.queue, n=n)
        ]
        if self.sending:
            parts.append(
                ngettext(
                    "{n} message already being sent could not be stopped",
                    "{n} messages already being sent could not be stopped",
                    self.sending,
                ).format(n=self.sending)
            )
        if self.sent:
            parts.append(
                ngettext("{n} message already sent", "{n} messages already sent", self.sent).format(
                    n=self.sent
                )
            )
        return _("; ").join(parts)


def undo_window_left(pulled_at: datetime | None, now: datetime | None = None) -> float:
    """Seconds left to undo a pull made at ``pulled_at`` (0 when past or unknown)."""
    if pulled_at is None:
        return 0.0
    left = (_at(pulled_at) + UNDO_WINDOW - (now or utcnow())).total_seconds()
    return max(left, 0.0)


def _at(value: datetime) -> datetime:
    found = _aware(value)  # SQLite hands back times without their zone
    assert found is not None
    return found


def unpull(session: Session, *, actor: User, key: str, now: datetime | None = None) -> Unpulled:
    """Undo ``actor``'s pull of ticket ``key`` in the caller's transaction (see the module)."""
    now = now or utcnow()
    ticket = get_ticket(session, key, lock=True)
    assert ticket.id is not None and ticket.key is not None
    if ticket.owner_id != actor.id:
        raise PermissionDenied(
            _("{key} is not yours: only the expert who pulled it can put it back").format(
                key=ticket.key
            )
        )
    pull = session.exec(
        select(Event)
        .where(Event.ticket_id == ticket.id, col(Event.field_name) == "owner")
        .order_by(col(Event.id).desc())
        .limit(1)
    ).first()
    if pull is None or pull.kind != PULLED_KIND or pull.actor_id != actor.id:
        raise Conflict(
            _("{key} was not pulled from a queue by {actor}").format(
                key=ticket.key, actor=actor.username
            )
        )
    age = (now - _at(pull.created_at)).total_seconds()
    if age > UNDO_WINDOW.total_seconds():
        window = int(UNDO_WINDOW.total_seconds())
        message = _(
            "Too late to put {key} back: it was pulled {age} s ago (a pull can be undone for "
            "{window} s)"
        )
        raise Conflict(message.format(key=ticket.key, age=int(age), window=window))
    # The pull's lines (the trigger wrote the owner line, then the status line) and any the
    # workflows wrote since; locked, so a dispatch running now finishes first.
    since_pull = (
        select(Event).where(Event.ticket_id == ticket.id, col(Event.id) >= pull.id)
    ).with_for_update()
    events = session.exec(since_pull.order_by(col(Event.id))).all()
    before = next(
        (e.from_value for e in events if e.kind == "ticket.status_changed" and e.from_value),
        ticket.status,
    )
    for event in events:
        if event.dispatched_at is None:
            event.dispatched_at = now
            session.add(event)
    session.flush()
    cancelled, sending, sent = _cancel_messages(session, ticket.id, [e.id for e in events])
    current, queue = ticket.status, ticket.pulled_from or ""
    # The pull was the SLA's first response if it wrote it (the claim sets both to its time):
    # undone, it was none.
    responded = ticket.first_responded_at
    first = (
        {}
        if responded is None or _at(responded) != _at(pull.created_at)
        else {"first_responded_at": None}
    )
    session.execute(
        update(Ticket)  # not pulled_from: setting it fires the pull's trigger
        .where(col(Ticket.id) == ticket.id)
        .values(owner_id=None, status=before, updated_at=now, version=NEXT_VERSION, **first)
    )
    record_event(session, kind="ticket.owner_changed", actor=actor, ticket_id=ticket.id,
                 field_name="owner", from_value=actor.username, to_value=None,
                 triggers_workflows=False)  # fmt: skip
    if before != current:
        record_event(session, kind="ticket.status_changed", actor=actor, ticket_id=ticket.id,
                     field_name="status", from_value=current, to_value=before,
                     triggers_workflows=False)  # fmt: skip
    done = Unpulled(ticket.key, queue, before, cancelled, sending, sent)
    record_event(session, kind="ticket.pull_undone", actor=actor, ticket_id=ticket.id,
                 detail=done.summary(), triggers_workflows=False)  # fmt: skip
    session.expire(ticket)
    return done


def _cancel_messages(
    session: Session, ticket_id: int, event_ids: list[int | None]
) -> tuple[int, int, int]:
    """Cancel the pull's messages not yet being sent: (cancelled, being sent, sent)."""
    ids = [i for i in event_ids if i is not None]
    of_pull = (col(OutboxMessage.ticket_id) == ticket_id, col(OutboxMessage.event_id).in_(ids))
    cancelled = (
        session.connection()
        .execute(
            update(OutboxMessage)
            .where(
                *of_pull,
                col(OutboxMessage.status).in_(UNSENT),
                col(OutboxMessage.sending_at).is_(None),
            )
            .values(
                status=CANCELLED,
                claimed_until=None,
                claim_token=None,
                last_error="not sent: the pull was undone",
            )  # fmt: skip
        )
        .rowcount
    )
    rows = session.exec(select(OutboxMessage.status).where(*of_pull)).all()
    sending = sum(1 for status in rows if status in UNSENT)
    sent = sum(1 for status in rows if status in ("sent", "bounced"))
    return int(cancelled), sending, sent
