"""A customer's text message (Twilio's inbound webhook, ``cxdesk.web.twilio_sms``) on the desk.

``receive_sms`` works in the caller's transaction (the web server's ``unit_of_work``, so the
workflows of ``message.received`` run before it commits):

1. once per MessageSid (``inbound.record_received``): Twilio sending it again changes nothing;
2. the sender (``From``) as the desk stores phones (E.164, ``store.phones``); a sender that is
   no phone number (a short code, an alphanumeric ID) is recorded as refused (in
   ``inbound_message``, with why), nothing else;
3. an opt-out keyword (``store.sms_optout``) flags the number and logs ``message.opted_out`` on
   its latest ticket; an opt-in keyword while it is opted out removes the flag
   (``message.opted_in``). Neither opens a ticket nor adds a comment;
4. any other text goes to the customer's latest open ticket with that phone; else to their
   latest ticket if it may continue (``inbound.continue_ticket``: resolved less than
   ``reopen_days`` ago, it is reopened, as for email); else to a new ticket in the inbound team
   (following their old one, if any), with the name and email of their latest ticket.

The text passes the desk's rule for multi-line text (``cxdesk.text.printable``: a control
character is kept as its visible escape, never dropped). MMS files are not downloaded: each
one's type and Twilio URL are listed under the text, saying so.

Finding the ticket reads ``ix_ticket_customer_phone`` (migration 0012: tickets by phone and
creation): the number's own tickets, newest first, whatever the desk's size, instead of a scan
of every ticket (or of every open one through the status index: thousands on a big desk).
Tickets store phones as E.164 (check-in answers, contacts and campaigns are normalised on the
way in), so the sender's normalised number is compared as it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from cxdesk.store.directory import get_setting
from cxdesk.store.events import record_event
from cxdesk.store.inbound import (
    add_customer_message,
    continue_ticket,
    note_outcome,
    open_inbound_ticket,
    record_received,
)
from cxdesk.store.models import Source, Status, StatusCategory, Ticket
from cxdesk.store.phones import normalise_phone
from cxdesk.store.sms_optout import (
    keyword_of,
    opt_in,
    opt_out,
    opt_out_reason,
    opted_out_reason_text,
)
from cxdesk.text import printable

TITLE_LENGTH = 80
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
EMPTY_TEXT = "(empty text message)"


@dataclass(frozen=True)
class InboundSms:
    """One text message as Twilio posted it (already proven to come from Twilio)."""

    sid: str
    """``MessageSid`` (``SM...``, or ``MM...`` for MMS)."""
    sender: str
    """``From`` as sent."""
    body: str
    media: Sequence[tuple[str, str]] = ()
    """The MMS files, (content type, URL at Twilio): listed, not downloaded."""
    raw: bytes = b""
    """The request's form as received, kept (capped) for audit."""


@dataclass(frozen=True)
class SmsOutcome:
    """What became of a message: ``duplicate``, ``refused``, ``opted_out``, ``opted_in``,
    ``added`` (to an open ticket), ``reopened`` or ``opened`` (a new ticket)."""

    outcome: str
    ticket_key: str | None = None
    detail: str = ""


def receive_sms(session: Session, sms: InboundSms) -> SmsOutcome:
    """Put ``sms`` where it belongs (see the module docstring), in the caller's transaction."""
    number = sender_number(session, sms.sender)
    sender = number or printable(sms.sender, lines=False)
    if not record_received(
        session, message_id=sms.sid, channel="sms", outcome="received", sender=sender, raw=sms.raw
    ):
        return SmsOutcome("duplicate")
    if number is None:
        detail = f"sender {sender[:100]!r} is not a phone number: not put on a ticket"
        note_outcome(session, sms.sid, outcome="refused", detail=detail)
        return SmsOutcome("refused", detail=detail)
    keyword = keyword_of(sms.body)
    if keyword == "out" or (keyword == "in" and opt_out_reason(session, number) is not None):
        return _opt(session, sms, number, out=keyword == "out")
    return _to_ticket(session, sms, number)


def sender_number(session: Session, sender: str) -> str | None:
    """``From`` as the desk stores phones (E.164); as sent when it has E.164's form but the
    phone library does not know its range (a new one: Twilio delivered it, so it exists);
    None for a short code or an alphanumeric sender."""
    try:
        return normalise_phone(sender, get_setting(session, "phone_region"))
    except ValueError:
        return sender if E164.fullmatch(sender) else None


def latest_ticket(
    session: Session, number: str, *, open_only: bool = False, lock: bool = False
) -> Ticket | None:
    """The newest ticket whose customer's phone is ``number`` (E.164); of those not resolved.
    ``lock``: its row lock until the transaction ends (PostgreSQL), so that an expert's save
    in between waits rather than makes the message's write stale (as mailgate locks)."""
    statement = select(Ticket).where(Ticket.customer_phone == number)
    if open_only:
        statement = statement.join(Status, col(Status.name) == col(Ticket.status)).where(
            Status.category != StatusCategory.resolved  # open, or paused (waiting on them)
        )
    statement = statement.order_by(col(Ticket.created_at).desc(), col(Ticket.id).desc())
    if lock:
        statement = statement.with_for_update(of=Ticket)
    return session.exec(statement.limit(1)).first()


def _opt(session: Session, sms: InboundSms, number: str, *, out: bool) -> SmsOutcome:
    word = sms.body.strip().upper()
    if out:
        changed = opt_out(session, number, reason=opted_out_reason_text(word))
        kind, outcome, what = "message.opted_out", "opted_out", "no more SMS to"
    else:
        changed = opt_in(session, number)
        kind, outcome, what = "message.opted_in", "opted_in", "SMS allowed again to"
    ticket = latest_ticket(session, number)
    detail = f"{word} received: {what} {number}" + ("" if changed else " (already so)")
    if changed:
        record_event(
            session,
            kind=kind,
            actor=None,
            ticket_id=ticket.id if ticket else None,
            field_name="sms",
            from_value=number,
            detail=detail,
        )
    note_outcome(
        session, sms.sid, outcome=outcome, ticket_id=ticket.id if ticket else None, detail=detail
    )
    return SmsOutcome(outcome, ticket.key if ticket else None, detail)


def _to_ticket(session: Session, sms: InboundSms, number: str) -> SmsOutcome:
    text = message_text(sms)
    ticket = latest_ticket(session, number, open_only=True, lock=True)
    outcome = "added"
    if ticket is None:
        last = latest_ticket(session, number, lock=True)
        ticket = continue_ticket(session, last) if last is not None else None
        outcome = "reopened"
        if ticket is None:
            # Split on LF only: str.splitlines also splits on U+2028 and kin, which the
            # desk's text rule shows as escapes instead.
            first_line = sms.body.replace("\r\n", "\n").strip().split("\n")[0]
            title = printable(first_line, lines=False)[:TITLE_LENGTH]
            ticket = open_inbound_ticket(
                session,
                title=title or f"Text message from {number}",
                source=Source.sms,
                customer_name=last.customer_name if last else "",
                customer_email=last.customer_email if last else "",
                customer_phone=number,
                follows=last,
            )
            outcome = "opened"
    comment = add_customer_message(session, ticket, channel="sms", sender=number, body=text)
    note_outcome(session, sms.sid, outcome=outcome, ticket_id=ticket.id, comment_id=comment.id)
    return SmsOutcome(outcome, ticket.key)


def message_text(sms: InboundSms) -> str:
    """The comment's text: the message (control characters as visible escapes), then the MMS
    files it carried, listed as not downloaded."""
    parts = [printable(sms.body, lines=True).strip()]
    if sms.media:
        count = len(sms.media)
        parts.append(
            f"[{count} MMS file{'s' if count > 1 else ''} not downloaded (the desk does not "
            "fetch files from Twilio); type and address at Twilio:]"
        )
        parts += [
            f"- {printable(kind, lines=False)} {printable(url, lines=False)}"
            for kind, url in sms.media
        ]
    return "\n".join(p for p in parts if p) or EMPTY_TEXT
