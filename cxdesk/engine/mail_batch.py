"""Claimed email rows as the messages the email channel sends: ids, threads and files.

``emails_for`` turns one claim's outbox rows into ``EmailOut`` values:

- each row's Message-ID is the desk's signed one (``store.message_ids``: the row's ticket and
  id, signed with the desk secret, at the From address's domain), the same on every attempt,
  so a repeat after an unknown outcome can be recognised, and a customer's answer quoting it
  finds its ticket (``message_id_for``). The secret is read once per batch;
- a reply (a row with ``comment_id``) carries its ``thread_refs`` and its comment's files and
  is not ``automatic``; every other row is (``Auto-Submitted``, ``mail_compose``);
- the files are loaded with the batch, at most ``ATTACHMENT_BUDGET`` bytes of them (a reply
  holds up to 5 x 500 KB): the rows past the budget are left out and, untried, given back by
  the batch (due at once, no attempt counted), for the next round.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from email.utils import parseaddr

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from cxdesk.engine.channels.email import EmailOut, MailAttachment
from cxdesk.store.db import read_session, transaction
from cxdesk.store.message_ids import domain_of, sign
from cxdesk.store.models import Attachment, DeskSetting, OutboxMessage
from cxdesk.store.survey_links import SECRET_SETTING, desk_secret

ATTACHMENT_BUDGET = 8 * 1024 * 1024
"""The most attachment bytes one batch holds in memory (one message over it still goes)."""


def message_id_for(secret: bytes, message: OutboxMessage, mail_from: str) -> str:
    """The signed Message-ID of an outbox row, at the domain of its From (``mail_from``: the
    row's, else the settings')."""
    assert message.id is not None
    domain = domain_of(parseaddr(message.from_addr or mail_from)[1])
    return sign(secret, ticket_id=message.ticket_id, outbox_id=message.id, domain=domain)


def read_secret(engine: Engine) -> bytes:
    """The desk secret, read without the write lock when it exists (it almost always does)."""
    with read_session(engine) as session:
        row = session.get(DeskSetting, SECRET_SETTING)
        if row is not None:
            return row.value.encode()
    with transaction(engine) as session:
        return desk_secret(session)


def emails_for(
    engine: Engine, messages: Sequence[OutboxMessage], *, mail_from: str
) -> list[EmailOut]:
    """The rows to send now, in order (those past ``ATTACHMENT_BUDGET`` left out)."""
    secret = read_secret(engine)
    comment_ids = {m.comment_id for m in messages if m.comment_id is not None}
    with read_session(engine) as session:
        sizes = _attachment_bytes(session, comment_ids)
        kept: list[OutboxMessage] = []
        budget = ATTACHMENT_BUDGET
        for message in messages:
            size = sizes.get(message.comment_id or 0, 0)
            if kept and size > budget:
                break  # the rest waits for the next round, in due order
            kept.append(message)
            budget -= size
        files = _attachments(session, {m.comment_id for m in kept if m.comment_id in sizes})
    return [
        EmailOut(
            outbox_id=m.id or 0,
            to=m.to_addr,
            from_addr=m.from_addr,
            reply_to=m.reply_to,
            subject=m.subject or "",
            body=m.body,
            message_id=message_id_for(secret, m, mail_from),
            thread_refs=tuple((m.thread_refs or "").split()),
            automatic=m.comment_id is None,
            attachments=tuple(files.get(m.comment_id or 0, ())),
        )
        for m in kept
    ]


def _attachment_bytes(session: Session, comment_ids: set[int]) -> dict[int, int]:
    if not comment_ids:
        return {}
    rows = session.exec(
        select(Attachment.comment_id, func.sum(Attachment.size))
        .where(col(Attachment.comment_id).in_(comment_ids))
        .group_by(col(Attachment.comment_id))
    ).all()
    return {comment_id: int(total or 0) for comment_id, total in rows}


def _attachments(session: Session, comment_ids: set[int]) -> dict[int, list[MailAttachment]]:
    found: dict[int, list[MailAttachment]] = defaultdict(list)
    if comment_ids:
        for item in session.exec(
            select(Attachment)
            .where(col(Attachment.comment_id).in_(comment_ids))
            .order_by(col(Attachment.id))
        ):
            found[item.comment_id].append(
                MailAttachment(item.filename, item.content_type, item.content)
            )
    return found
