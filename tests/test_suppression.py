"""Automatic answers to inbound mail held back at queue time (RFC 3834), on both databases:
never to bulk or automatic mail, at most one per address per period; nothing else changes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.inbound.hygiene import classify
from cxdesk.engine.outbox import list_outbox
from cxdesk.engine.suppression import AUTO_REPLY_MINUTES_SETTING, auto_reply_period
from cxdesk.engine.workflows import save_workflow
from cxdesk.store import inbound
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_user, set_setting
from cxdesk.store.models import Event, OutboxMessage, Ticket
from cxdesk.store.surveys import submit_response
from cxdesk.store.tickets import get_ticket
from tests.cli_helpers import Cli
from tests.desk import build_small_desk
from tests.test_hygiene import DESK, sample

ACKNOWLEDGE = {
    "type": "send_email",
    "to": "${tck://Field/customerEmail}",
    "subject": "[${tck://Field/key}] We have your message",
    "body": "An expert will answer soon.",
}


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    with transaction(engine) as s:
        set_setting(s, inbound.INBOUND_TEAM_SETTING, "Solo")
        save_workflow(s, actor=None, name="Acknowledge email", event="ticket.created",
                      conditions={"all": [{"field": "tck://Field/source", "op": "is",
                                           "value": "email"}]},
                      tasks=[ACKNOWLEDGE])  # fmt: skip
    return engine


def receive(engine: Engine, name: str, *, message_id: str | None = None) -> str:
    """A sample mail handled as the mail gate does: recorded once with what hygiene said,
    a ticket opened for its sender, the message put on it, in one unit of work."""
    message = sample(name)
    verdict = classify(message, own_addresses=[DESK])
    assert verdict.kind in ("human", "bulk"), "only these open tickets"
    sender = message["From"].addresses[0].addr_spec.lower()
    message_id = message_id or str(message["Message-ID"])
    body = message.get_body()
    assert body is not None
    with unit_of_work(engine) as s:
        assert inbound.record_received(s, message_id=message_id, channel="email",
                                       outcome="opened", sender=sender,
                                       may_answer=verdict.may_answer)  # fmt: skip
        ticket = inbound.open_inbound_ticket(s, title=str(message["Subject"]), source="email",
                                             customer_email=sender)  # fmt: skip
        comment = inbound.add_customer_message(s, ticket, channel="email", sender=sender,
                                               body=body.get_content())  # fmt: skip
        inbound.note_outcome(s, message_id, outcome="opened", ticket_id=ticket.id,
                             comment_id=comment.id, detail=verdict.reason or None)  # fmt: skip
        assert ticket.key is not None
        return ticket.key


def emails_to(engine: Engine, address: str) -> list[OutboxMessage]:
    with read_session(engine) as s:
        return [m for m in list_outbox(s) if m.to_addr == address]


def suppressed(engine: Engine, key: str) -> list[str]:
    with read_session(engine) as s:
        ticket = get_ticket(s, key)
        events = s.exec(
            select(Event).where(Event.ticket_id == ticket.id, Event.kind == "message.suppressed")
        ).all()
        return [e.detail or "" for e in events]


def test_a_persons_mail_is_acknowledged(desk: Engine) -> None:
    key = receive(desk, "human-reply.eml")
    [ack] = emails_to(desk, "ann@example.org")
    assert ack.subject == f"[{key}] We have your message"
    assert suppressed(desk, key) == []


@pytest.mark.parametrize(
    ("name", "sender", "why"),
    [
        ("list-mail.eml", "ben@example.net", "Precedence: list"),
        ("bulk-newsletter.eml", "news@surveyweekly.example", "Precedence: bulk"),
        ("noreply-notification.eml", "noreply@shop.example", "a mail system, not a person"),
        ("system-auto-generated.eml", "alerts@ops.example.org", "Auto-Submitted: auto-generated"),
    ],
)
def test_bulk_and_system_mail_is_never_answered(
    desk: Engine, name: str, sender: str, why: str
) -> None:
    key = receive(desk, name)
    assert emails_to(desk, sender) == []
    assert suppressed(desk, key) == [
        f"{sender}'s latest message is list, bulk or automatic mail: not answered"
    ]
    with read_session(desk) as s:
        record = inbound.already_received(s, str(sample(name)["Message-ID"]))
        assert record is not None and why in (record.detail or "")


def test_one_sender_is_answered_once_per_period(desk: Engine) -> None:
    first = receive(desk, "human-reply.eml", message_id="<one@mail.example.org>")
    second = receive(desk, "human-reply.eml", message_id="<two@mail.example.org>")
    assert [m.ticket_id for m in emails_to(desk, "ann@example.org")] == [
        t.id for t in _tickets(desk, first)
    ]
    assert suppressed(desk, second) == [
        "ann@example.org was already answered automatically in the last 60 minutes"
    ]
    with transaction(desk) as s:  # the period passes
        for row in list_outbox(s):
            row.created_at -= timedelta(minutes=60)
            s.add(row)
    receive(desk, "human-reply.eml", message_id="<three@mail.example.org>")
    assert len(emails_to(desk, "ann@example.org")) == 2


def _tickets(engine: Engine, *keys: str) -> list[Ticket]:
    with read_session(engine) as s:
        return [get_ticket(s, key) for key in keys]


def test_the_period_is_a_desk_setting_and_0_turns_it_off(desk: Engine) -> None:
    with transaction(desk) as s:
        set_setting(s, AUTO_REPLY_MINUTES_SETTING, "0")
    for n in range(3):
        receive(desk, "human-reply.eml", message_id=f"<{n}@mail.example.org>")
    assert len(emails_to(desk, "ann@example.org")) == 3


def test_two_workflows_answering_one_message_send_one_answer(desk: Engine) -> None:
    """``ticket.created`` and ``message.received`` of the same mail: one answer."""
    with transaction(desk) as s:
        save_workflow(s, actor=None, name="Thank every message", event="message.received",
                      tasks=[{**ACKNOWLEDGE, "subject": "Thanks"}])  # fmt: skip
    key = receive(desk, "human-reply.eml")
    assert [m.subject for m in emails_to(desk, "ann@example.org")] == [
        f"[{key}] We have your message"
    ]
    assert len(suppressed(desk, key)) == 1


def test_notices_to_experts_are_not_answers_and_are_not_held_back(desk: Engine) -> None:
    with transaction(desk) as s:
        save_workflow(s, actor=None, name="Tell Maya", event="ticket.created",
                      conditions={"all": [{"field": "tck://Field/source", "op": "is",
                                           "value": "email"}]},
                      tasks=[{**ACKNOWLEDGE, "to": "maya@example.com"}])  # fmt: skip
    receive(desk, "list-mail.eml")
    receive(desk, "bulk-newsletter.eml")
    assert len(emails_to(desk, "maya@example.com")) == 2


def test_check_in_confirmations_are_unchanged(desk: Engine) -> None:
    """Not answers to inbound mail: the same address confirmed twice within the period."""
    with transaction(desk) as s:
        save_workflow(s, actor=None, name="Confirm check-in", event="ticket.created",
                      tasks=[{**ACKNOWLEDGE, "subject": "You are checked in"}])  # fmt: skip
    answers = {"first_name": "Ann", "last_name": "Example", "email": "ann@example.org",
               "product": "360"}  # fmt: skip
    for _ in range(2):
        with unit_of_work(desk) as s:
            submit_response(s, actor=get_user(s, "vera"), survey_name="checkin", answers=answers)
    assert [m.subject for m in emails_to(desk, "ann@example.org")] == ["You are checked in"] * 2
    with read_session(desk) as s:
        assert s.exec(select(Event).where(col(Event.kind) == "message.suppressed")).all() == []


def test_texts_are_answered_once_per_period_too(desk: Engine) -> None:
    with transaction(desk) as s:
        save_workflow(s, actor=None, name="Acknowledge text", event="message.received",
                      conditions={"all": [{"field": "e://Field/field", "op": "is",
                                           "value": "sms"}]},
                      tasks=[{"type": "send_sms", "to": "${e://Field/fromValue}",
                              "body": "We have your message."}])  # fmt: skip
    for sid in ("SM1", "SM2"):
        with unit_of_work(desk) as s:
            inbound.record_received(s, message_id=sid, channel="sms", outcome="opened",
                                    sender="+14155552671")  # fmt: skip
            ticket = inbound.open_inbound_ticket(s, title="Text", source="sms",
                                                 customer_phone="+14155552671")  # fmt: skip
            inbound.add_customer_message(s, ticket, channel="sms", sender="+14155552671",
                                         body="Help")  # fmt: skip
            inbound.note_outcome(s, sid, outcome="opened", ticket_id=ticket.id)
    assert len(emails_to(desk, "+14155552671")) == 1


def test_the_period_comes_from_the_seed_files_desk_table(
    cli: Cli, first_admin: None, engine: Engine, tmp_path: Path
) -> None:
    seed = tmp_path / "desk.toml"
    seed.write_text("[desk]\nauto_reply_minutes = 15\n")
    assert cli("seed", str(seed)).exit_code == 0
    with read_session(engine) as s:
        assert auto_reply_period(s) == timedelta(minutes=15)
    for bad, shown in (("-5", "-5"), ('"soon"', "'soon'"), ("true", "True")):
        seed.write_text(f"[desk]\nauto_reply_minutes = {bad}\n")
        refused = cli("seed", str(seed))
        assert refused.exit_code == 1 and "Traceback" not in refused.output
        assert "[desk]: auto_reply_minutes must be a whole number of minutes from 0 to 527040, " \
            f"not {shown}" in refused.stderr  # fmt: skip
    with read_session(engine) as s:
        assert auto_reply_period(s) == timedelta(minutes=15)
