"""What a customer sends the desk, as it lands on tickets: the primitives every door shares.

Email (``cxdesk mail import|fetch``, ``cxdesk.engine.inbound``) and SMS (Twilio's webhook,
``cxdesk.web``) both come here once they know who wrote and what: ``record_received`` makes
each message count once (by Message-ID or MessageSid, a unique column, so two fetchers racing
store it once), ``continue_ticket`` decides whether a message on an old ticket reopens it or
starts a new one linked to it, ``open_inbound_ticket`` opens a ticket in the desk's inbound
team, and ``add_customer_message`` puts the customer's words (and files) on the conversation
and raises ``message.received`` for workflows.

Desk settings (``cxdesk setting``): ``inbound_team`` (where mail and texts from strangers go;
default the first team by name) and ``reopen_days`` (how long after it was resolved a reply
reopens a ticket; default 7).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import PurePath

from sqlmodel import Session, col, select

from cxdesk.errors import DeskError
from cxdesk.i18n import _
from cxdesk.store.directory import get_setting, get_status, get_team, whole_number_setting
from cxdesk.store.events import record_event
from cxdesk.store.models import (
    Attachment,
    Comment,
    CommentKind,
    InboundMessage,
    StatusCategory,
    Team,
    Ticket,
    utcnow,
)
from cxdesk.store.sla import start_next_response
from cxdesk.store.tickets import TicketDraft, change_status, create_ticket, status_category
from cxdesk.store.upsert import dialect_insert

INBOUND_TEAM_SETTING = "inbound_team"
REOPEN_DAYS_SETTING = "reopen_days"
DEFAULT_REOPEN_DAYS = 7
RAW_CAP = 1024 * 1024
"""The most of a raw message kept for audit (the rest is cut, ``raw_truncated``)."""


def already_received(session: Session, message_id: str) -> InboundMessage | None:
    """The record of this message if the desk has handled it before."""
    return session.exec(
        select(InboundMessage).where(InboundMessage.message_id == message_id)
    ).first()


def record_received(
    session: Session,
    *,
    message_id: str,
    channel: str,
    outcome: str,
    sender: str = "",
    subject: str = "",
    ticket_id: int | None = None,
    comment_id: int | None = None,
    detail: str | None = None,
    raw: bytes | None = None,
    may_answer: bool = True,
) -> bool:
    """Record that a message was handled, in the caller's transaction; False if it already was.

    Call it *before* writing anything else for the message, and roll back on False: the unique
    ``message_id`` makes a second fetcher of the same message (racing this one) find nothing
    to do. ``ticket_id``/``comment_id`` can be filled in later with ``note_outcome``.
    """
    table = InboundMessage.__table__  # type: ignore[attr-defined]
    insert = dialect_insert(session.get_bind().dialect.name)
    kept = raw[:RAW_CAP] if raw is not None else None
    result = session.connection().execute(
        insert(table)
        .values(
            message_id=message_id[:512],
            channel=channel,
            sender=sender[:320],
            subject=subject[:300],
            received_at=utcnow(),
            ticket_id=ticket_id,
            comment_id=comment_id,
            outcome=outcome,
            detail=detail,
            may_answer=may_answer,
            raw=kept,
            raw_truncated=raw is not None and len(raw) > RAW_CAP,
        )
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(table.c.id)
    )
    return result.first() is not None


def note_outcome(
    session: Session,
    message_id: str,
    *,
    outcome: str,
    ticket_id: int | None = None,
    comment_id: int | None = None,
    detail: str | None = None,
) -> None:
    """Say what became of a recorded message (the ticket and comment it landed on)."""
    row = already_received(session, message_id[:512])
    if row is None:
        raise DeskError(_("No inbound message {message_id!r}").format(message_id=message_id))
    row.outcome = outcome
    row.ticket_id = ticket_id
    row.comment_id = comment_id
    row.detail = detail
    session.add(row)
    session.flush()


def inbound_team(session: Session) -> Team:
    """The team that gets tickets opened by customers writing in (setting ``inbound_team``)."""
    name = get_setting(session, INBOUND_TEAM_SETTING)
    if name:
        return get_team(session, name)
    team = session.exec(select(Team).order_by(col(Team.name))).first()
    if team is None:
        raise DeskError(_("The desk has no team to receive customer messages: add one first"))
    return team


def reopen_window(session: Session) -> timedelta:
    return timedelta(days=whole_number_setting(session, REOPEN_DAYS_SETTING, DEFAULT_REOPEN_DAYS))


def continue_ticket(session: Session, ticket: Ticket) -> Ticket | None:
    """Where a customer's new message on ``ticket`` belongs.

    The ticket itself while it is not resolved (open, or paused: ``add_customer_message``
    puts a paused one back to open); reopened (status ``open``) when it was resolved less
    than ``reopen_days`` ago; None when it is closed or was resolved earlier: the caller opens
    a new ticket with ``follows=ticket``.
    """
    if status_category(session, ticket.status) != StatusCategory.resolved:
        return ticket
    resolved_at = ticket.resolved_at
    if ticket.status == "closed" or resolved_at is None:
        return None
    if utcnow() - resolved_at > reopen_window(session):
        return None
    change_status(session, None, ticket, get_status(session, "open"))
    return ticket


def open_inbound_ticket(
    session: Session,
    *,
    title: str,
    source: str,
    customer_name: str = "",
    customer_email: str = "",
    customer_phone: str = "",
    follows: Ticket | None = None,
) -> Ticket:
    """A new ticket for a customer who wrote in; in the old ticket's team when it follows one."""
    team = inbound_team(session) if follows is None else session.get(Team, follows.team_id)
    assert team is not None
    draft = TicketDraft(
        title=title.strip() or "(no subject)",
        team=team.name,
        customer_name=customer_name,
        customer_email=customer_email,
        customer_phone=customer_phone,
        source=source,
        channel=source,
    )
    ticket = create_ticket(session, actor=None, draft=draft)
    if follows is not None:
        ticket.follows_id = follows.id
        session.add(ticket)
        session.flush()
        record_event(
            session,
            kind="ticket.linked",
            actor=None,
            ticket_id=ticket.id,
            field_name="follows",
            to_value=follows.key,
            triggers_workflows=False,
        )
    return ticket


def add_customer_message(
    session: Session,
    ticket: Ticket,
    *,
    channel: str,
    sender: str,
    body: str,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> Comment:
    """The customer's words on the conversation, with files already within the desk's limits
    as (filename, content type, bytes); raises ``message.received`` for workflows. A ticket in
    a paused status (waiting on the customer) goes back to ``open``, and the message starts the
    SLA's next-response clock (``store.sla``)."""
    assert ticket.id is not None
    if status_category(session, ticket.status) == StatusCategory.paused:
        change_status(session, None, ticket, get_status(session, "open"))
    comment = Comment(
        ticket_id=ticket.id,
        author_id=None,
        body=body.strip(),
        kind=CommentKind.customer,
        channel=channel,
        sender=sender[:320],
    )
    session.add(comment)
    session.flush()
    assert comment.id is not None
    for filename, content_type, content in attachments:
        session.add(
            Attachment(
                comment_id=comment.id,
                filename=PurePath(filename).name[:255] or "attachment",
                content_type=content_type[:100],
                size=len(content),
                content=content,
            )
        )
    ticket.updated_at = utcnow()
    start_next_response(session, ticket, comment.created_at)
    session.add(ticket)
    session.flush()
    record_event(
        session,
        kind="message.received",
        actor=None,
        ticket_id=ticket.id,
        field_name=channel,
        from_value=sender,
        detail=f"comment #{comment.id}",
    )
    return comment
