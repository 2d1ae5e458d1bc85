"""The conversation's read side (``store.conversation``) on SQLite and PostgreSQL: the three
kinds of comment told apart, a reply's delivery from its outbox row, attachments numbered
across the ticket, thread events, one query per table, and the customer's other tickets."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlmodel import select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import NotFound
from cxdesk.store import tickets as ops
from cxdesk.store.conversation import (
    HISTORY_LIMIT,
    attachment_content,
    conversation,
    customer_history,
    delivery_status,
    describe,
)
from cxdesk.store.db import read_session
from cxdesk.store.directory import get_user
from cxdesk.store.events import record_event
from cxdesk.store.models import OutboxMessage, Ticket, utcnow
from tests.conversation_desk import (
    ANN_EMAIL,
    ANSWER,
    FAILED_REPLY,
    FAILURE,
    LOG_FILE,
    NOTE,
    PICTURE,
    REPLY,
    AnnsDesk,
    anns_desk,
    reply_as,
)


@pytest.fixture
def desk(engine: Engine) -> AnnsDesk:
    return anns_desk(engine)


def test_the_conversation_tells_notes_replies_and_customer_messages_apart(
    engine: Engine, desk: AnnsDesk
) -> None:
    with read_session(engine) as s:
        items = conversation(s, ops.get_ticket(s, desk.key))
    assert [(i.kind, i.body) for i in items] == [
        ("note", NOTE), ("reply", REPLY), ("customer", ANSWER), ("reply", FAILED_REPLY),
    ]  # fmt: skip
    note, reply, answer, failed = items
    assert (note.author, note.channel, note.delivery) == ("maya", None, None)
    assert (reply.author, reply.channel, reply.to, reply.delivery, reply.reason) == (
        "maya", "email", ANN_EMAIL, "sent", None
    )  # fmt: skip
    assert (answer.author, answer.sender, answer.channel) == (None, ANN_EMAIL, "email")
    assert (failed.delivery, failed.reason) == ("failed", FAILURE)
    assert [describe(i) for i in items] == [
        "internal note · maya",
        "to customer by email · maya · sent",
        f"from {ANN_EMAIL} by email",
        f"to customer by email · maya · failed: {FAILURE}",
    ]
    files = [(a.n, a.name, a.type, a.size) for a in answer.attachments]
    assert files == [
        (1, LOG_FILE[0], LOG_FILE[1], len(LOG_FILE[2])),
        (2, ".bashrc.png", PICTURE[1], len(PICTURE[2])),  # no folder kept from the sender
    ]
    assert note.to_dict()["attachments"] == []
    assert answer.to_dict()["attachments"][0] == {
        "n": 1, "name": LOG_FILE[0], "type": LOG_FILE[1], "size": len(LOG_FILE[2])
    }  # fmt: skip


def test_attachments_are_numbered_across_the_ticket_and_read_by_number(
    engine: Engine, desk: AnnsDesk
) -> None:
    with unit_of_work(engine) as s:
        ops.add_comment(s, actor=get_user(s, "maya"), key=desk.key, body="Our notes",
                        attachments=[ops.NewAttachment("notes.csv", b"a,b\n")])  # fmt: skip
    with read_session(engine) as s:
        ticket = ops.get_ticket(s, desk.key)
        numbers = [(a.n, a.name) for i in conversation(s, ticket) for a in i.attachments]
        assert numbers == [(1, LOG_FILE[0]), (2, ".bashrc.png"), (3, "notes.csv")]
        item, content = attachment_content(s, ticket, 3)
        assert (item.name, content) == ("notes.csv", b"a,b\n")
        assert attachment_content(s, ticket, 1)[1] == LOG_FILE[2]
        for wrong in (0, 4):
            with pytest.raises(NotFound, match=f"no attachment {wrong} \\(it has 3"):
                attachment_content(s, ticket, wrong)
        other = ops.get_ticket(s, desk.stranger)
        with pytest.raises(NotFound, match="it has 0 attachments"):
            attachment_content(s, other, 1)


@pytest.mark.parametrize(
    ("status", "sending", "shown"),
    [("pending", False, "queued"), ("pending", True, "sending"), ("dead", False, "dead"),
     ("stale", False, "stale"), ("bounced", False, "bounced"), ("skipped", False, "skipped")],
)  # fmt: skip
def test_a_replys_delivery_follows_its_outbox_row(
    engine: Engine, desk: AnnsDesk, status: str, sending: bool, shown: str
) -> None:
    with unit_of_work(engine) as s:
        ticket = ops.get_ticket(s, desk.key)
        comment = reply_as(s, get_user(s, "maya"), ticket, "One more thing", status)
        row = s.exec(select(OutboxMessage).where(OutboxMessage.comment_id == comment.id)).one()
        row.sending_at = utcnow() if sending else None
        s.add(row)
    with read_session(engine) as s:
        last = conversation(s, ops.get_ticket(s, desk.key))[-1]
        assert delivery_status(row) == shown
    assert (last.body, last.delivery) == ("One more thing", shown)
    assert last.reason == (FAILURE if status in ("dead", "bounced", "skipped") else None)


def test_thread_events_sit_among_the_comments(engine: Engine, desk: AnnsDesk) -> None:
    with unit_of_work(engine) as s:
        ticket = ops.get_ticket(s, desk.key)
        record_event(s, kind="attachment.refused", actor=None, ticket_id=ticket.id,
                     detail="huge.mov (30 MB): over the desk's limit")  # fmt: skip
        record_event(s, kind="ticket.commented", actor=None, ticket_id=ticket.id)  # not shown
    with read_session(engine) as s:
        items = conversation(s, ops.get_ticket(s, desk.key))
    assert [i.kind for i in items] == ["note", "reply", "customer", "reply", "event"]
    assert describe(items[-1]) == "attachment refused"
    assert items[-1].body == "huge.mov (30 MB): over the desk's limit"


def test_a_conversation_costs_one_query_per_table_however_long(
    engine: Engine, desk: AnnsDesk
) -> None:
    with unit_of_work(engine) as s:
        maya, ticket = get_user(s, "maya"), ops.get_ticket(s, desk.key)
        for n in range(30):
            reply_as(s, maya, ticket, f"Reply {n}", "sent")
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    with read_session(engine) as s:
        ticket = ops.get_ticket(s, desk.key)
        event.listen(engine, "before_cursor_execute", count)
        try:
            items = conversation(s, ticket)
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(items) == 34
    # comments, their authors, the outbox rows of the replies, the attachments, the events
    assert len(statements) == 5, statements


def test_the_customers_history_is_her_other_tickets_newest_first(
    engine: Engine, desk: AnnsDesk
) -> None:
    with read_session(engine) as s:
        history = customer_history(s, ops.get_ticket(s, desk.key))
        assert [h.key for h in history] == [desk.by_phone, desk.by_email]  # never the stranger
        assert history[0].to_dict()["title"] == "Texted us"
        assert history[1].status == "new"
        # from the phone-only ticket, the same phone finds Ann's ticket (and only it)
        assert [h.key for h in customer_history(s, ops.get_ticket(s, desk.by_phone))] == [desk.key]
        # no email and no phone: no history (never "every ticket without a phone")
        nameless = Ticket(title="Walked in", status="new", origin_team_id=0, team_id=0)
        assert customer_history(s, nameless) == []


def test_the_history_is_bounded(engine: Engine, desk: AnnsDesk) -> None:
    with unit_of_work(engine) as s:
        maya = get_user(s, "maya")
        for n in range(HISTORY_LIMIT + 3):
            ops.create_manual_ticket(s, actor=maya, customer_email=ANN_EMAIL, team="360",
                                     comment=f"Question {n}")  # fmt: skip
    with read_session(engine) as s:
        history = customer_history(s, ops.get_ticket(s, desk.key))
    assert len(history) == HISTORY_LIMIT
    assert history[0].title == f"Question {HISTORY_LIMIT + 2}"  # the newest


def test_the_history_searches_its_indexes_never_walks_the_desk(
    engine: Engine, desk: AnnsDesk
) -> None:
    """SQLite's plan (PostgreSQL's depends on its statistics: measured in migration 0012)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("the plan is checked on SQLite")
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        seen.append((statement, parameters))

    with read_session(engine) as s:
        ticket = ops.get_ticket(s, desk.key)
        event.listen(engine, "before_cursor_execute", keep)
        try:
            customer_history(s, ticket)
        finally:
            event.remove(engine, "before_cursor_execute", keep)
        ((statement, parameters),) = seen
        plan = s.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        details = [row[3] for row in plan]
    assert any("ix_ticket_customer_email" in d for d in details), details
    assert any("ix_ticket_customer_phone" in d for d in details), details
    assert not any(d.startswith("SCAN ticket") for d in details), details
