"""A ticket with a whole conversation, for the conversation's store, CLI and screen tests.

On ``tests/desk.py``'s small desk: Ann's ticket on team 360, owned by maya, with an internal
note, a reply to Ann (a ``reply`` comment and the outbox row carrying it, made the way
``store.replies.reply_to_customer`` makes them), Ann's answer by email with a file, and a
second reply whose delivery failed; Ann's other tickets (one under her email in another case,
one under her phone only) and a stranger's ticket that must never show in her history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from cxdesk.engine import outbox
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.store import tickets as ops
from cxdesk.store.directory import get_user
from cxdesk.store.inbound import add_customer_message, open_inbound_ticket
from cxdesk.store.models import Comment, CommentKind, Ticket, User, utcnow
from tests.desk import build_small_desk

ANN_EMAIL = "ann@example.com"
ANN_PHONE = "+14155552671"
NOTE = "Ann called: she exports every Monday"
REPLY = "Hi Ann,\nthe weights are under Options."
ANSWER = "Thanks, the export still fails.\nLog attached."
FAILED_REPLY = "Could you send the survey id?"
FAILURE = "421 4.7.0 try again later"
LOG_FILE = ("export log.txt", "text/plain", b"line 1\nline 2\n" * 50)
PICTURE = ("../../.bashrc.png", "image/png", b"\x89PNG\r\n\x1a\n fake")


@dataclass(frozen=True)
class AnnsDesk:
    """The keys: Ann's ticket with the conversation, her other two, a stranger's."""

    key: str
    by_email: str
    by_phone: str
    stranger: str


def reply_as(session: Session, actor: User, ticket: Ticket, body: str, status: str) -> Comment:
    """A reply to the ticket's customer by email, with the outbox row that carries it, in the
    state ``status`` (``pending``, ``sent``, ``failed``...)."""
    comment = Comment(ticket_id=ticket.id or 0, author_id=actor.id, body=body,
                      kind=CommentKind.reply, channel="email")  # fmt: skip
    session.add(comment)
    session.flush()
    message = outbox.enqueue(
        session, channel="email", to=ticket.customer_email, body=body,
        subject=f"[{ticket.key}] Your question", ticket_id=ticket.id,
    )  # fmt: skip
    message.comment_id = comment.id
    message.status = status
    message.last_error = FAILURE if status in ("failed", "dead", "bounced", "skipped") else None
    session.add(message)
    session.flush()
    return comment


def anns_desk(engine: Engine) -> AnnsDesk:
    build_small_desk(engine)
    with unit_of_work(engine) as s:
        maya = get_user(s, "maya")
        stranger = ops.create_manual_ticket(s, actor=maya, customer_email="bob@example.com",
                                            team="360", comment="Bob's question")  # fmt: skip
        by_email = ops.create_manual_ticket(s, actor=maya, customer_email="ANN@Example.com",
                                            team="360", comment="An older question")  # fmt: skip
        by_phone = open_inbound_ticket(s, title="Texted us", source="sms",
                                       customer_phone=ANN_PHONE)  # fmt: skip
        ticket = ops.create_manual_ticket(s, actor=maya, customer_email=ANN_EMAIL, team="360",
                                          comment="Exports fail", owner="maya")  # fmt: skip
        ticket.customer_phone = ANN_PHONE
        by_email.created_at = utcnow() - timedelta(days=3)  # the oldest of Ann's others
        s.add_all([ticket, by_email])
        key = ticket.key or ""
        ops.add_comment(s, actor=maya, key=key, body=NOTE)
        reply_as(s, maya, ticket, REPLY, "sent")
        add_customer_message(s, ticket, channel="email", sender=ANN_EMAIL, body=ANSWER,
                             attachments=[LOG_FILE, PICTURE])  # fmt: skip
        reply_as(s, maya, ticket, FAILED_REPLY, "failed")
        return AnnsDesk(key, by_email.key or "", by_phone.key or "", stranger.key or "")
