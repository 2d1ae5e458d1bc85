"""Automatic answers to inbound mail, held back at queue time (RFC 3834).

A workflow's email or SMS *answers* an inbound message when its event was caused by one
(``message.received``, or ``ticket.created`` of a ticket opened by an email or a text) and it
goes to the address that wrote (a sender recorded on the ticket's inbound messages, the event's
sender, or the ticket's customer email or phone). Such an answer is not queued when

- the sender's latest message on the ticket may not be answered (``InboundMessage.may_answer``
  False: an auto-reply, a list, bulk or system mail: ``engine.inbound.hygiene``); or
- an answer to inbound mail already went to that address within the desk setting
  ``auto_reply_minutes`` (default 60; 0 turns this limit off): two auto-responders never
  write to each other for ever, and a customer sending five emails gets one acknowledgement.

Everything else is left as it was: check-in confirmations, pull notices, CSAT surveys and
notices to experts are not answers to inbound mail. A held-back message is logged on the ticket
as ``message.suppressed`` with the reason.
"""

from __future__ import annotations

from datetime import timedelta
from email.utils import parseaddr

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from cxdesk.store import in_hand
from cxdesk.store.directory import whole_number_setting
from cxdesk.store.models import Event, InboundMessage, OutboxMessage, Source, Ticket, utcnow

AUTO_REPLY_MINUTES_SETTING = "auto_reply_minutes"
DEFAULT_AUTO_REPLY_MINUTES = 60
INBOUND_SOURCES = (Source.email.value, Source.sms.value)


def auto_reply_period(session: Session) -> timedelta:
    """At most one answer to inbound mail per address within this (setting
    ``auto_reply_minutes``; a value that is not a whole number counts as the default)."""
    minutes = whole_number_setting(session, AUTO_REPLY_MINUTES_SETTING, DEFAULT_AUTO_REPLY_MINUTES)
    return timedelta(minutes=minutes)


def _caused_by_inbound(session: Session, event: Event) -> Ticket | None:
    """The ticket an inbound message landed on, when ``event`` is that message's doing."""
    if event.kind not in ("message.received", "ticket.created") or event.ticket_id is None:
        return None  # the usual case (pulls, status changes, check-ins): no query at all
    ticket = in_hand.get(session, Ticket, event.ticket_id)
    if ticket is None or (event.kind == "ticket.created" and ticket.source not in INBOUND_SOURCES):
        return None
    return ticket


def _bare(address: str) -> str:
    return (parseaddr(address)[1] or address).strip().lower()


def _latest_from(session: Session, ticket: Ticket, address: str) -> InboundMessage | None:
    """The ticket's latest inbound message from ``address``."""
    rows = session.exec(
        select(InboundMessage)
        .where(InboundMessage.ticket_id == ticket.id)
        .order_by(col(InboundMessage.id).desc())
        .limit(200)
    ).all()
    return next((row for row in rows if _bare(row.sender) == address), None)


def _answered_lately(session: Session, to: str, since: timedelta) -> bool:
    """Whether an automatic answer to inbound mail was queued for ``to`` within ``since``."""
    inbound_cause = or_(
        col(Event.kind) == "message.received",
        and_(col(Event.kind) == "ticket.created", col(Ticket.source).in_(INBOUND_SOURCES)),
    )
    statement = (
        select(OutboxMessage.id)
        .join(Event, col(Event.id) == OutboxMessage.event_id)
        .outerjoin(Ticket, col(Ticket.id) == Event.ticket_id)
        .where(
            OutboxMessage.to_addr == to,
            OutboxMessage.created_at >= utcnow() - since,
            col(OutboxMessage.comment_id).is_(None),
            inbound_cause,
        )
        .limit(1)
    )
    return session.exec(statement).first() is not None


def hold_back_reason(session: Session, *, event: Event, to: str) -> str | None:
    """Why an automatic message to ``to`` caused by ``event`` must not be queued; None when
    it is not an answer to inbound mail, or may be sent."""
    ticket = _caused_by_inbound(session, event)
    if ticket is None:
        return None
    address = _bare(to)
    latest = _latest_from(session, ticket, address)
    writers = {_bare(event.from_value or ""), _bare(ticket.customer_email),
               _bare(ticket.customer_phone)} - {""}  # fmt: skip
    if latest is None and address not in writers:
        return None  # not to the one who wrote (a notice to an expert): not an answer
    if latest is not None and not latest.may_answer:
        return f"{address}'s latest message is list, bulk or automatic mail: not answered"
    period = auto_reply_period(session)
    if period and _answered_lately(session, to, period):
        minutes = int(period.total_seconds() // 60)
        return f"{address} was already answered automatically in the last {minutes} minutes"
    return None
