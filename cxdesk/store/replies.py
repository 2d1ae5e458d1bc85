"""Replies to the customer from a ticket: a comment the customer receives, through the outbox.

``reply_to_customer`` writes, in the caller's transaction, the reply (a ``CommentKind.reply``
comment with its files), the outbox row that carries it (``comment_id``; for email the
subject with the ticket's key and the conversation's Message-IDs in ``thread_refs``), the
ticket's first response time if it had none, and a ``ticket.replied`` log line. A reply is
worth sending for ``REPLY_VALID_FOR`` and does not go stale when its ticket moves on (an
expert who replies and resolves at once still means the reply to go: ``engine.staleness``).

The email's threading headers are made from ``thread_refs`` when it is sent
(``engine.mail_batch``): the customers' emails on the ticket (``InboundMessage``, those a
person wrote: ``may_answer``) and the desk's replies already sent (their signed
Message-IDs, ``OutboxMessage.provider_id``), oldest first, the first one and the last
``THREAD_REFS_KEPT`` at most, as mail clients trim References.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.headerregistry import Address

from sqlmodel import Session, col, select

from cxdesk.engine.outbox import enqueue
from cxdesk.errors import DeskError, PermissionDenied, ValidationFailed, must_be_one_of
from cxdesk.i18n import N_, _
from cxdesk.store.directory import get_setting
from cxdesk.store.events import record_event
from cxdesk.store.message_ids import message_ids_in
from cxdesk.store.models import (
    Comment,
    CommentKind,
    InboundMessage,
    OutboxMessage,
    Ticket,
    User,
)
from cxdesk.store.phones import normalise_phone
from cxdesk.store.sla import note_response
from cxdesk.store.sms_optout import opt_out_reason
from cxdesk.store.tickets import (
    NewAttachment,
    attachment_names,
    can_work_on,
    check_attachments,
    get_ticket,
    require_staff,
    store_comment,
)

CHANNELS = ("email", "sms")
REPLY_VALID_FOR = timedelta(days=7)
"""How long a reply is worth sending: a worker down for days still delivers it."""
THREAD_REFS_KEPT = 10
"""References keeps the conversation's first Message-ID and this many latest ones."""
SMS_MAX_CHARS = 1600
"""Twilio's limit for one message body (error 21617 beyond it)."""
SUBJECT_MAX_CHARS = 300
_REPLY_PREFIX = re.compile(r"^(\s*(re|aw|sv|antw|fwd?)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


def reply_to_customer(
    session: Session,
    *,
    actor: User,
    key: str,
    body: str,
    channel: str | None = None,
    attachments: Sequence[NewAttachment] = (),
) -> Comment:
    """Write a reply (``CommentKind.reply``) and queue it to the customer in one transaction.

    ``channel`` None: email when the ticket has a customer email, else SMS. Raises
    ``ValidationFailed``/``PermissionDenied``/``DeskError`` with a one-line reason (no address,
    number opted out, not on the ticket's team...) and writes nothing then.
    """
    text = body.strip()
    if not text:
        raise ValidationFailed({"message": _("is required")})
    if channel is not None and channel not in CHANNELS:
        raise ValidationFailed({"channel": must_be_one_of(CHANNELS)})
    check_attachments(attachments)
    require_staff(actor, N_("reply to customers"))
    ticket = get_ticket(session, key, lock=True)
    if not can_work_on(session, actor, ticket):
        raise PermissionDenied(_("You are not on the team of {key}").format(key=ticket.key))
    chosen = channel or ("email" if ticket.customer_email else "sms")
    if chosen == "email":
        to, subject = email_recipient(ticket), reply_subject(session, ticket)
        refs = thread_refs(session, ticket)
    else:
        if attachments:
            raise ValidationFailed({"attachments": _("an SMS cannot carry files: reply by email")})
        if len(text) > SMS_MAX_CHARS:
            raise ValidationFailed(
                {
                    "message": _("an SMS is at most {limit:,} characters ({n:,})").format(
                        limit=SMS_MAX_CHARS, n=len(text)
                    )
                }
            )
        to, subject, refs = sms_recipient(session, ticket), None, None

    comment = store_comment(
        session, actor, ticket, text, attachments, kind=CommentKind.reply, channel=chosen
    )
    message = enqueue(
        session,
        channel=chosen,
        to=to,
        subject=subject,
        body=text,
        ticket_id=ticket.id,
        comment_id=comment.id,
        thread_refs=refs,
        valid_for=REPLY_VALID_FOR,
    )
    if ticket.first_response_at is None:
        ticket.first_response_at = comment.created_at
    note_response(ticket, comment.created_at)  # the SLA's first and next response
    session.add(ticket)
    session.flush()
    files = attachment_names(attachments)
    record_event(
        session,
        kind="ticket.replied",
        actor=actor,
        ticket_id=ticket.id,
        field_name=chosen,
        to_value=to,
        detail=f"outbox #{message.id}" + (f", {files}" if files else ""),
    )
    return comment


def email_recipient(ticket: Ticket) -> str:
    """``Name <address>`` for the ticket's customer (the bare address if the name cannot go
    in a header as it is); ``DeskError`` when the ticket has no customer email."""
    address = ticket.customer_email.strip()
    if not address:
        raise DeskError(
            _("{key} has no customer email to reply to (reply by SMS?)").format(key=ticket.key)
        )
    name = one_line(ticket.customer_name)
    try:
        named = str(Address(display_name=name, addr_spec=address)) if name else address
    except (ValueError, TypeError, IndexError):
        return address
    return named if len(named) <= 320 else address


def sms_recipient(session: Session, ticket: Ticket) -> str:
    """The customer's number as E.164, if it may get an SMS; ``DeskError`` if not."""
    if not ticket.customer_phone.strip():
        raise DeskError(
            _("{key} has no customer phone number for an SMS reply").format(key=ticket.key)
        )
    try:
        number = normalise_phone(ticket.customer_phone, get_setting(session, "phone_region"))
    except ValueError as exc:
        raise DeskError(
            _("{key}'s customer phone {customer_phone!r}: {exc}").format(
                key=ticket.key, customer_phone=ticket.customer_phone, exc=exc
            )
        ) from None
    if (opted_out := opt_out_reason(session, number)) is not None:
        raise DeskError(_("{opted_out}: reply by email instead").format(opted_out=opted_out))
    return number


def one_line(text: str) -> str:
    """``text`` fit for a header: control characters dropped, whitespace runs made one space
    (a customer's subject is theirs to write, line breaks and NULs included)."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def reply_subject(session: Session, ticket: Ticket) -> str:
    """``Re: [EXP-12] <subject>``: the customer's last email subject (if they wrote one),
    else the ticket's title, with the key added once."""
    last = session.exec(
        select(InboundMessage.subject)
        .where(
            InboundMessage.ticket_id == ticket.id,
            InboundMessage.channel == "email",
            col(InboundMessage.may_answer),
            InboundMessage.subject != "",
        )
        .order_by(col(InboundMessage.id).desc())
        .limit(1)
    ).first()
    base = _REPLY_PREFIX.sub("", one_line(last or ticket.title))
    tag = f"[{ticket.key}]"
    if tag.lower() not in base.lower():
        base = f"{tag} {base}".rstrip()
    return f"Re: {base}"[:SUBJECT_MAX_CHARS]


def thread_refs(session: Session, ticket: Ticket) -> str | None:
    """The Message-IDs of the ticket's email conversation so far, oldest first, space
    separated (None if there is none yet): the customers' emails and the replies sent."""
    theirs = session.exec(
        select(InboundMessage.received_at, InboundMessage.message_id).where(
            InboundMessage.ticket_id == ticket.id,
            InboundMessage.channel == "email",
            col(InboundMessage.may_answer),
        )
    ).all()
    ours = session.exec(
        select(OutboxMessage.sent_at, OutboxMessage.provider_id).where(
            OutboxMessage.ticket_id == ticket.id,
            OutboxMessage.channel == "email",
            col(OutboxMessage.comment_id).is_not(None),
            col(OutboxMessage.sent_at).is_not(None),
            col(OutboxMessage.provider_id).is_not(None),
        )
    ).all()
    timeline: list[tuple[datetime, str]] = [(at, value or "") for at, value in [*theirs, *ours]]
    ids: list[str] = []
    for _at, value in sorted(timeline, key=lambda item: item[0]):
        for found in message_ids_in(value):
            if found not in ids:
                ids.append(found)
    if len(ids) > THREAD_REFS_KEPT + 1:
        ids = [ids[0], *ids[-THREAD_REFS_KEPT:]]
    return " ".join(ids) or None
