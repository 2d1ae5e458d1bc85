"""A ticket's conversation as the screen and ``ticket show`` read it, its files, and the
customer's other tickets.

``conversation`` gives every comment oldest first as a plain ``ConversationItem``: an internal
``note``, a ``reply`` to the customer with its delivery status (read from the outbox row that
carries it, ``OutboxMessage.comment_id``), or a ``customer`` message with its sender, each
with its attachments numbered across the ticket (1, 2, ... in the order they were added: the
N of ``cxdesk ticket attachment KEY N``); plus the events worth reading in the thread (an
out-of-office answer, a file refused). One query per table, whatever the number of comments.

``customer_history`` is the customer's other tickets (same email, any case, or same phone),
newest first, a bounded page: it runs on every reload of the ticket screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import and_, func, literal_column, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from cxdesk.errors import NotFound
from cxdesk.i18n import _
from cxdesk.store.models import (
    Attachment,
    Comment,
    CommentKind,
    Event,
    OutboxMessage,
    Ticket,
    User,
)
from cxdesk.store.tickets import ticket_comments

HISTORY_LIMIT = 20
"""The most of a customer's other tickets shown with one ticket."""
THREAD_EVENTS = ("message.auto_reply", "attachment.refused")
"""Events shown in the conversation, where they happened (the Log has all of them)."""
EVENT = "event"
"""The kind of a conversation item that is an event, not a comment."""
REASONED = ("failed", "dead", "stale", "bounced", "skipped")
"""Delivery statuses shown with their reason (the outbox row's ``last_error``)."""


@dataclass(frozen=True)
class AttachmentItem:
    """One file on the ticket: ``n`` counts from 1 across the whole ticket."""

    n: int
    name: str
    type: str
    size: int
    comment_id: int
    id: int


@dataclass(frozen=True)
class ConversationItem:
    """One entry of the conversation.

    ``kind``: ``note`` (internal), ``reply`` (to the customer), ``customer`` (from them), or
    ``event`` (``event`` names it, ``body`` is its detail). ``delivery`` is a reply's outbox
    status: queued, sending, sent, failed (retried), dead (given up), stale (not sent),
    bounced; None when no message carries it.
    """

    kind: str
    at: datetime
    body: str
    author: str | None = None
    sender: str | None = None
    channel: str | None = None
    to: str | None = None
    delivery: str | None = None
    reason: str | None = None
    event: str | None = None
    attachments: tuple[AttachmentItem, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """As JSON prints it (``ticket show --json``): times in ISO format."""
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["attachments"] = [
            {"n": a.n, "name": a.name, "type": a.type, "size": a.size} for a in self.attachments
        ]
        return data


@dataclass(frozen=True)
class HistoryItem:
    """Another ticket of the same customer."""

    key: str
    title: str
    status: str
    created_at: datetime

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "created_at": self.created_at.isoformat()}


def delivery_status(message: OutboxMessage) -> str:
    """How far the message carrying a reply got: ``pending`` is told apart as queued or
    sending (a deliverer marked it: its send started, outcome not yet known)."""
    if message.status == "pending":
        return "sending" if message.sending_at is not None else "queued"
    return message.status


def ticket_attachments(session: Session, ticket: Ticket) -> list[AttachmentItem]:
    """The ticket's files, numbered in the order they were added; never their bytes."""
    rows = session.execute(
        sa_select(
            col(Attachment.id),
            col(Attachment.comment_id),
            col(Attachment.filename),
            col(Attachment.content_type),
            col(Attachment.size),
        )
        .join(Comment, col(Comment.id) == col(Attachment.comment_id))
        .where(col(Comment.ticket_id) == ticket.id)
        .order_by(col(Attachment.comment_id), col(Attachment.id))
    ).all()
    return [
        AttachmentItem(n=n, name=name, type=kind, size=size, comment_id=comment_id, id=id_ or 0)
        for n, (id_, comment_id, name, kind, size) in enumerate(rows, start=1)
    ]


def attachment_content(session: Session, ticket: Ticket, n: int) -> tuple[AttachmentItem, bytes]:
    """Attachment number ``n`` of the ticket with its bytes; ``NotFound`` naming how many
    the ticket has."""
    found = ticket_attachments(session, ticket)
    if not 1 <= n <= len(found):
        count = f"{len(found)} attachment{'s' if len(found) != 1 else ''}"
        raise NotFound(
            _("{key} has no attachment {n} (it has {count})").format(
                key=ticket.key, n=n, count=count
            )
        )
    item = found[n - 1]
    content = session.exec(select(Attachment.content).where(Attachment.id == item.id)).one()
    return item, content


def _usernames(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.exec(select(User.id, User.username).where(col(User.id).in_(ids))).all()
    return {user_id: name for user_id, name in rows if user_id is not None}


def _carriers(session: Session, reply_ids: list[int]) -> dict[int, OutboxMessage]:
    """The outbox row carrying each reply (the latest, should there be more than one)."""
    if not reply_ids:
        return {}
    messages = session.exec(
        select(OutboxMessage)
        .where(col(OutboxMessage.comment_id).in_(reply_ids))
        .order_by(col(OutboxMessage.id))
    ).all()
    return {m.comment_id: m for m in messages if m.comment_id is not None}


def _comment_item(
    comment: Comment,
    users: dict[int, str],
    carriers: dict[int, OutboxMessage],
    files: Sequence[AttachmentItem],
) -> ConversationItem:
    author = users.get(comment.author_id) if comment.author_id is not None else None
    message = carriers.get(comment.id or 0) if comment.kind == CommentKind.reply else None
    delivery = delivery_status(message) if message is not None else None
    return ConversationItem(
        kind=comment.kind,
        at=comment.created_at,
        body=comment.body,
        author=author,
        sender=comment.sender,
        channel=comment.channel or (message.channel if message else None),
        to=message.to_addr if message else None,
        delivery=delivery,
        reason=(message.last_error or None) if message and delivery in REASONED else None,
        attachments=tuple(files),
    )


def conversation(session: Session, ticket: Ticket) -> list[ConversationItem]:
    """Every comment of the ticket and the thread's events, oldest first (see the module)."""
    comments = ticket_comments(session, ticket)
    users = _usernames(session, {c.author_id for c in comments if c.author_id is not None})
    carriers = _carriers(
        session, [c.id for c in comments if c.kind == CommentKind.reply and c.id is not None]
    )
    files: dict[int, list[AttachmentItem]] = {}
    for item in ticket_attachments(session, ticket) if comments else []:
        files.setdefault(item.comment_id, []).append(item)
    items = [_comment_item(c, users, carriers, files.get(c.id or 0, ())) for c in comments]
    events = session.exec(
        select(Event)
        .where(Event.ticket_id == ticket.id, col(Event.kind).in_(THREAD_EVENTS))
        .order_by(col(Event.id))
    ).all()
    if not events:
        return items
    items += [
        ConversationItem(kind=EVENT, at=e.created_at, body=e.detail or "", event=e.kind)
        for e in events
    ]
    return sorted(items, key=lambda item: item.at)  # stable: comments keep their order


def customer_history(
    session: Session, ticket: Ticket, *, limit: int = HISTORY_LIMIT
) -> list[HistoryItem]:
    """The customer's other tickets (same email in any case, or same phone), newest first, at
    most ``limit``; none when the ticket has neither."""
    # The phone term repeats its partial index's condition as a literal (a bound '' would
    # not prove it): one index search per term, never a walk of the desk (migration 0012).
    same = []
    email = ticket.customer_email.strip().lower()
    if email:
        same.append(func.lower(col(Ticket.customer_email)) == email)
    phone = ticket.customer_phone.strip()
    if phone:
        phone_column = col(Ticket.customer_phone)
        same.append(and_(phone_column == phone, phone_column != literal_column("''")))
    if not same:
        return []
    rows = session.exec(
        select(Ticket.key, Ticket.title, Ticket.status, Ticket.created_at)
        .where(or_(*same), col(Ticket.id) != ticket.id)
        .order_by(col(Ticket.created_at).desc(), col(Ticket.id).desc())
        .limit(limit)
    ).all()
    return [
        HistoryItem(key=key or "", title=title, status=status, created_at=created)
        for key, title, status, created in rows
    ]


# -- how an item is named, the same in ``ticket show`` and on the ticket screen ---------------

EVENT_NAMES = {"message.auto_reply": "automatic answer received", "attachment.refused":
               "attachment refused"}  # fmt: skip


def size_text(size: int) -> str:
    """A file size as people read it: 812 B, 14 KB, 2.5 MB."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def attachment_text(item: AttachmentItem) -> str:
    """``[2] invoice.pdf · application/pdf · 14 KB``: N is what ``ticket attachment`` takes."""
    return f"[{item.n}] {item.name} · {item.type} · {size_text(item.size)}"


def delivery_text(item: ConversationItem) -> str:
    """A reply's delivery as one phrase: ``sent``, ``failed: 421 try later``, ``not queued``."""
    if item.delivery is None:
        return _("not queued")
    return f"{item.delivery}: {item.reason}" if item.reason else item.delivery


def describe(item: ConversationItem) -> str:
    """Who an item is from and for, in words (never by colour alone): ``internal note · maya``,
    ``to customer by email · maya · sent``, ``from ann@example.com by email``."""
    who = item.author or _("system")
    if item.kind == CommentKind.note:
        return _("internal note · {who}").format(who=who)
    if item.kind == CommentKind.reply:
        return _("to customer by {channel} · {who} · {delivery}").format(
            channel=item.channel or "?", who=who, delivery=delivery_text(item)
        )
    if item.kind == CommentKind.customer:
        return _("from {sender} by {channel}").format(
            sender=item.sender or _("the customer"), channel=item.channel or "?"
        )
    return EVENT_NAMES.get(item.event or "", item.event or "event")
