"""No-show (``cxdesk ticket noshow``, ``store.noshow``) on the demo desk, on SQLite and
PostgreSQL: the ticket goes back to the head of its queue (before older and more urgent
tickets), its recalls are counted, the customer is texted through the demo's workflow (and,
in one test, the worker sends it through the Twilio contract mock); past the desk's recalls
it is resolved as no-show with no CSAT survey; only its owner or an admin may do it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlmodel import col, select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.store import directory
from cxdesk.store import tickets as ops
from cxdesk.store.db import read_session
from cxdesk.store.models import Event, OutboxMessage, Priority, Queue, QueueOrder, Ticket
from cxdesk.store.noshow import no_show
from cxdesk.store.waiting import ticket_wait
from tests.cli_helpers import Cli, assert_one_error_line, table_counts
from tests.desk import build_small_desk, pull
from tests.test_delivery import mail_env, ok, outbox_rows, sms_env  # noqa: F401 (fixtures)

RECALLED = "we called you"
CSAT_SUBJECT = "How did"


@pytest.fixture
def demo(cli: Cli, engine: Engine) -> Engine:
    ok(cli("demo"))
    return engine


def check_in(cli: Cli, first: str, product: str, phone: str = "+14155552671") -> str:
    answers = {"first_name": first, "last_name": "Lovelace", "email": f"{first}@example.com",
               "phone": phone, "product": product}  # fmt: skip
    pairs = [arg for name, value in answers.items() for arg in ("--answer", f"{name}={value}")]
    [key] = ok(cli("checkin", "--as", "vera", *pairs)).split()
    return key


def pull_until(cli: Cli, key: str, queue: str, expert: str) -> None:
    """Pull ``queue`` as ``expert`` until ``key`` comes out (the demo's samples wait too)."""
    for _ in range(20):
        if ok(cli("ticket", "pull", queue, "--as", expert)).strip() == key:
            return
    pytest.fail(f"{key} never came out of {queue}")


def stored(engine: Engine, key: str) -> Ticket:
    with read_session(engine) as s:
        return ops.get_ticket(s, key)


def messages(engine: Engine, key: str, channel: str = "sms") -> list[OutboxMessage]:
    with read_session(engine) as s:
        ticket = ops.get_ticket(s, key)
        return list(
            s.exec(
                select(OutboxMessage)
                .where(OutboxMessage.ticket_id == ticket.id, OutboxMessage.channel == channel)
                .order_by(col(OutboxMessage.id))
            ).all()
        )


def near_front_events(engine: Engine, key: str) -> int:
    with read_session(engine) as s:
        ticket = ops.get_ticket(s, key)
        found = s.exec(
            select(Event.id).where(Event.ticket_id == ticket.id, Event.kind == "ticket.near_front")
        )
        return len(found.all())


def test_noshow_puts_the_ticket_back_at_the_head_counts_and_texts(cli: Cli, demo: Engine) -> None:
    engine = demo
    older = check_in(cli, "Bea", "360")  # waits, older than the no-show's ticket
    key = check_in(cli, "Zoe", "360")
    ok(cli("ticket", "update", key, "--owner", "maya", "--comment", "At the desk", "--as", "admin"))
    told_before = near_front_events(engine, key)

    line = ok(cli("ticket", "noshow", key, "--as", "maya"))
    assert line.strip() == f"{key} back at the head of its queue (recall 1)."
    ticket = stored(engine, key)
    assert (ticket.owner_id, ticket.status, ticket.recalls) == (None, "new", 1)
    with read_session(engine) as s:
        wait = ticket_wait(s, ticket)
        assert wait is not None and wait.position == 1
        assert ticket_wait(s, ops.get_ticket(s, older)).position > 1  # type: ignore[union-attr]
    [recall] = [m for m in messages(engine, key) if RECALLED in m.body]
    assert recall.to_addr == "+14155552671" and recall.status == "pending"
    assert recall.body.startswith("Hi Zoe, we called you") and key in recall.body
    shown = ok_json(cli, key)
    assert shown["recalls"] == 1
    assert "ticket.recalled" in [e["kind"] for e in shown["log"]]

    # The next pull of the queue, by anyone, is this ticket, ahead of the older one.
    assert ok(cli("ticket", "pull", "360", "--as", "lena")).strip() == key
    assert near_front_events(engine, key) == told_before  # recalled: never "you're next"


def ok_json(cli: Cli, key: str) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(ok(cli("ticket", "show", key, "--json")))
    return shown


def test_recalled_ticket_goes_before_more_urgent_ones_in_a_priority_queue(engine: Engine) -> None:
    build_small_desk(engine)
    with unit_of_work(engine) as s:
        s.execute(
            update(Queue).where(col(Queue.name) == "360").values(ordering=QueueOrder.priority)
        )
        first = ops.create_ticket(s, actor=None, draft=ops.TicketDraft(title="A", team="360"))
    assert pull(engine, "maya", "360") == first.key
    with unit_of_work(engine) as s:
        urgent = ops.create_ticket(
            s, actor=None, draft=ops.TicketDraft(title="B", team="360", priority=Priority.critical)
        )
        no_show(s, actor=directory.get_user(s, "maya"), key=first.key or "")
    assert pull(engine, "omar", "360") == first.key
    assert pull(engine, "omar", "360") == urgent.key


def test_after_the_desks_recalls_it_is_resolved_as_noshow_without_csat(
    cli: Cli, demo: Engine
) -> None:
    engine = demo
    key = check_in(cli, "Zoe", "API")
    for recall in (1, 2):  # noshow_recalls = 2 on the demo desk
        pull_until(cli, key, "API", "omar")
        assert f"(recall {recall})" in ok(cli("ticket", "noshow", key, "--as", "omar"))
    pull_until(cli, key, "API", "omar")
    line = ok(cli("ticket", "noshow", key, "--as", "omar"))
    assert line.strip() == f"{key} resolved as no-show after 2 recalls."
    ticket = stored(engine, key)
    assert (ticket.status, ticket.recalls) == ("no-show", 2)
    assert ticket.resolved_at is not None
    assert len([m for m in messages(engine, key) if RECALLED in m.body]) == 2
    assert not [m for m in messages(engine, key, "email") if CSAT_SUBJECT in (m.subject or "")]
    assert "no-show" in ok(cli("ticket", "show", key))
    assert_one_error_line(cli("ticket", "noshow", key, "--as", "omar"), "no-show", "open ticket")

    # The same desk does send a CSAT survey for a ticket resolved as "resolved".
    other = check_in(cli, "Ann", "API")
    pull_until(cli, other, "API", "omar")
    ok(cli("ticket", "update", other, "--status", "resolved", "--comment", "Fixed", "--as", "omar"))
    assert [m for m in messages(engine, other, "email") if CSAT_SUBJECT in (m.subject or "")]


def test_only_the_owner_or_an_admin_may_and_refusals_change_nothing(cli: Cli, demo: Engine) -> None:
    engine = demo
    key = check_in(cli, "Zoe", "360")
    waiting = "Error: " + f"{key} is waiting in its queue"
    assert_one_error_line(cli("ticket", "noshow", key, "--as", "maya"), waiting)
    pull_until(cli, key, "360", "maya")
    before = table_counts(engine)
    refusals = [
        (("--as", "lena"), f"{key} is not yours"),  # on the team, not the owner
        (("--as", "vera"), "A volunteer cannot mark a no-show"),
    ]
    for who, message in refusals:
        assert_one_error_line(cli("ticket", "noshow", key, *who), message)
    assert_one_error_line(cli("ticket", "noshow", "EXP-99999", "--as", "maya"), "No ticket")
    assert table_counts(engine) == before
    assert stored(engine, key).recalls == 0
    assert "(recall 1)" in ok(cli("ticket", "noshow", key, "--as", "admin"))


@pytest.mark.slow
@pytest.mark.usefixtures("demo", "mail_env", "sms_env")
def test_the_worker_sends_the_recall_sms_and_not_the_stale_ready_one(cli: Cli) -> None:
    key = check_in(cli, "Zoe", "Survey Projects", phone="+14155550123")
    pull_until(cli, key, "Survey Projects", "lena")
    ok(cli("ticket", "noshow", key, "--as", "lena"))
    line = ok(cli("worker", "--once"))
    assert "failed 0" in line, line
    sms = {row["body"]: row for row in outbox_rows(cli) if row["ticket"] == key}
    [recall] = [row for body, row in sms.items() if RECALLED in body]
    assert (recall["status"], recall["to"], recall["attempts"]) == ("sent", "+14155550123", 1)
    [ready] = [row for body, row in sms.items() if "is ready to help you" in body]
    assert ready["status"] == "stale"  # the ticket changed hands: not sent


def test_a_desk_without_recalls_resolves_at_once_making_the_status(engine: Engine) -> None:
    build_small_desk(engine)  # no "no-show" status, no workflows
    with unit_of_work(engine) as s:
        directory.set_setting(s, "noshow_recalls", "0")
        key = ops.create_ticket(s, actor=None, draft=ops.TicketDraft(title="A", team="360")).key
    assert key is not None and pull(engine, "omar", "360") == key
    with unit_of_work(engine) as s:
        done = no_show(s, actor=directory.get_user(s, "omar"), key=key)
    assert (done.resolved, done.recalls) == (True, 0)
    with read_session(engine) as s:
        assert directory.get_status(s, "no-show").category == "resolved"
        ticket = ops.get_ticket(s, key)
        assert (ticket.status, ticket.queue_band) == ("no-show", 1)
