"""The primitives every inbound door shares: once per message, reopen or follow up, signed ids."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from cxdesk.store import inbound, message_ids
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_status
from cxdesk.store.models import Comment, CommentKind, Event, InboundMessage, Ticket
from cxdesk.store.survey_links import desk_secret
from cxdesk.store.tickets import change_status, get_ticket


@pytest.fixture
def desk(inbound_desk: Engine) -> Engine:
    return inbound_desk  # tests/mail_helpers.py: the small desk, inbound team Solo


def _opened(engine: Engine) -> str:
    with transaction(engine) as s:
        ticket = inbound.open_inbound_ticket(
            s, title="Printer", source="email", customer_email="ann@example.com"
        )
        inbound.add_customer_message(
            s, ticket, channel="email", sender="ann@example.com", body=" Hello ",
            attachments=[("../../etc/a.pdf", "application/pdf", b"%PDF")],
        )  # fmt: skip
        assert ticket.key is not None
        return ticket.key


def test_a_message_is_recorded_once(desk: Engine) -> None:
    for expected in (True, False):
        with transaction(desk) as s:
            first = inbound.record_received(
                s, message_id="<a@b>", channel="email", outcome="opened", raw=b"x" * 10
            )
            assert first is expected
    with read_session(desk) as s:
        rows = s.exec(select(InboundMessage)).all()
        assert [(r.message_id, r.raw_truncated) for r in rows] == [("<a@b>", False)]


def test_a_stranger_opens_a_ticket_in_the_inbound_team(desk: Engine) -> None:
    key = _opened(desk)
    with read_session(desk) as s:
        ticket = get_ticket(s, key)
        comment = s.exec(select(Comment).where(Comment.ticket_id == ticket.id)).one()
        assert (comment.kind, comment.sender, comment.body) == (
            CommentKind.customer, "ann@example.com", "Hello"
        )  # fmt: skip
        kinds = [e.kind for e in s.exec(select(Event).where(Event.ticket_id == ticket.id))]
        assert "message.received" in kinds
        assert ticket.source == "email"


def test_a_recent_resolution_reopens_and_an_old_one_follows_up(desk: Engine) -> None:
    key = _opened(desk)
    with transaction(desk) as s:
        ticket = get_ticket(s, key)
        change_status(s, None, ticket, get_status(s, "resolved"))
        assert inbound.continue_ticket(s, ticket) is ticket
        assert ticket.status == "open"
        change_status(s, None, ticket, get_status(s, "resolved"))
        assert ticket.resolved_at is not None
        ticket.resolved_at -= timedelta(days=8)
        assert inbound.continue_ticket(s, ticket) is None
        change_status(s, None, ticket, get_status(s, "closed"))
        assert inbound.continue_ticket(s, ticket) is None
        follow = inbound.open_inbound_ticket(s, title="Again", source="email", follows=ticket)
        assert (follow.follows_id, follow.team_id) == (ticket.id, ticket.team_id)
    with read_session(desk) as s:
        assert s.exec(select(Ticket).where(Ticket.follows_id.is_not(None))).one()  # type: ignore[union-attr]


def test_signed_message_ids_verify_and_forgeries_do_not(desk: Engine) -> None:
    with transaction(desk) as s:
        secret = desk_secret(s)
    made = message_ids.sign(secret, ticket_id=12, outbox_id=34, domain="desk.example")
    assert message_ids.verify(secret, made) == message_ids.SignedId(ticket_id=12, outbox_id=34)
    forged = made.replace("cx.12.", "cx.13.")
    assert message_ids.verify(secret, forged) is None
    assert message_ids.verify(b"another desk", made) is None
    with read_session(desk) as s:
        found = message_ids.verified_in(s, f"<x@y> {made}", forged)
    assert [f.outbox_id for f in found] == [34]
