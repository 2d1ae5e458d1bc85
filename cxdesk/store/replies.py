"""Replies to the customer from a ticket: a comment the customer receives, through the outbox.

INTERFACE STUB (issue 14 foundation): the reply slice implements it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from cxdesk.store.models import Comment, User
from cxdesk.store.tickets import NewAttachment


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
    raise NotImplementedError("reply_to_customer: the reply slice of issue 14")
