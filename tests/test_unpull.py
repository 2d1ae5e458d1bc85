"""Undoing a pull (``store.unpull``, ``cxdesk ticket unpull``) on SQLite and PostgreSQL: the
ticket is next again with its old status, the log says so, the window and the owner are
checked, and its customer hears nothing: through the real worker, aiosmtpd and Prism's
Twilio (the fixtures of tests/test_delivery.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import col, select

from cxdesk.engine.dispatch import dispatch_backlog
from cxdesk.errors import Conflict, PermissionDenied
from cxdesk.store import directory
from cxdesk.store import tickets as ops
from cxdesk.store.db import read_session, transaction
from cxdesk.store.models import Event, OutboxMessage, utcnow
from cxdesk.store.pull import pull_next
from cxdesk.store.unpull import UNDO_WINDOW, unpull
from tests.cli_helpers import Cli
from tests.desk import build_small_desk
from tests.peers import SmtpPeer
from tests.test_delivery import (  # noqa: F401  (mail_env, sms_env: fixtures)
    CUSTOMER,
    EXPERT,
    EXPERT_NAME,
    check_in_and_pull,
    mail_env,
    ok,
    outbox_rows,
    sms_env,
)

QUEUE = "Website/App Feedback"


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    return engine


@pytest.fixture
def demo_desk(cli: Cli, engine: Engine) -> Engine:
    ok(cli("demo"))
    return engine


def check_in(cli: Cli) -> str:
    pairs = [arg for name, value in CUSTOMER.items() for arg in ("--answer", f"{name}={value}")]
    [key] = ok(cli("checkin", "--as", "vera", *pairs)).split()
    return key


def open_tickets(engine: Engine, *titles: str, priority: str = "medium") -> list[str]:
    keys = []
    with transaction(engine) as s:
        for title in titles:
            draft = ops.TicketDraft(title=title, team="360", priority=priority)
            keys.append(ops.create_ticket(s, actor=None, draft=draft).key or "")
    return keys


def undo(engine: Engine, username: str, key: str, **kwargs: object) -> str:
    with transaction(engine) as session:
        actor = directory.get_user(session, username)
        return unpull(session, actor=actor, key=key, **kwargs).summary()  # type: ignore[arg-type]


def pull(engine: Engine, username: str, queue: str = "360") -> str:
    with read_session(engine) as session:
        actor = directory.get_user(session, username)
    return pull_next(engine, actor=actor, queue_name=queue).key


def test_an_undone_pull_is_next_again_with_its_status_and_a_log(desk: Engine) -> None:
    first, second = open_tickets(desk, "first", "second")
    assert pull(desk, "maya") == first
    assert undo(desk, "maya", first) == f"{first} is back in queue 360; 0 messages cancelled"
    with read_session(desk) as session:
        ticket = ops.get_ticket(session, first)
        kinds = session.exec(
            select(Event.kind, Event.from_value, Event.to_value)
            .where(Event.ticket_id == ticket.id)
            .order_by(col(Event.id))
        ).all()
    assert (ticket.owner_id, ticket.status) == (None, "new")
    assert kinds[-3:] == [
        ("ticket.owner_changed", "maya", None),
        ("ticket.status_changed", "open", "new"),
        ("ticket.pull_undone", None, None),
    ]
    assert pull(desk, "omar") == first  # next again, for anyone
    assert pull(desk, "omar") == second


def test_in_a_priority_queue_it_is_first_of_its_priority_again(desk: Engine) -> None:
    with transaction(desk) as s:
        directory.add_queue(s, actor=None, name="360 urgent", team="360", ordering="priority")
    [high] = open_tickets(desk, "high", priority="high")
    open_tickets(desk, "low", priority="low")
    assert pull(desk, "maya", "360 urgent") == high
    [later_high] = open_tickets(desk, "later high", priority="high")
    undo(desk, "maya", high)
    assert [pull(desk, "omar", "360 urgent") for _ in range(2)] == [high, later_high]


def test_only_the_puller_within_the_window_can_undo(desk: Engine) -> None:
    [key] = open_tickets(desk, "one")
    pull(desk, "maya")
    with pytest.raises(PermissionDenied, match="is not yours"):
        undo(desk, "omar", key)
    late = utcnow() + UNDO_WINDOW + timedelta(seconds=1)
    with pytest.raises(Conflict, match=rf"^Too late to put {key} back: it was pulled 1[56] s ago"):
        undo(desk, "maya", key, now=late)
    with read_session(desk) as session:
        assert ops.get_ticket(session, key).owner_id is not None
    undo(desk, "maya", key)
    with pytest.raises(PermissionDenied):  # twice: it is nobody's now
        undo(desk, "maya", key)


def test_undo_before_the_workflows_ran_means_they_never_run(demo_desk: Engine, cli: Cli) -> None:
    """A pull whose dispatch has not run yet (the CLI's unpull from another terminal): its
    events are closed, so the worker's backlog pass writes no message for them."""
    desk = demo_desk
    key = check_in(cli)
    while pull(desk, EXPERT, QUEUE) != key:
        pass
    undo(desk, EXPERT, key)
    dispatch_backlog(desk)
    with read_session(desk) as session:
        ticket = ops.get_ticket(session, key)
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id))
        assert not [r.body for r in rows if EXPERT_NAME in r.body]
    # The same pull, not undone, does write them: the workflows were there to run.
    assert pull(desk, EXPERT, QUEUE) == key
    dispatch_backlog(desk)
    with read_session(desk) as session:
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id))
        assert len([r.body for r in rows if EXPERT_NAME in r.body]) == 2


@pytest.mark.slow
def test_an_undone_pull_sends_nothing_and_the_ticket_is_next_again(
    cli: Cli,
    engine: Engine,
    mail_env: SmtpPeer,  # noqa: F811
    sms_env: str,  # noqa: F811
) -> None:
    ok(cli("demo"))
    key = check_in_and_pull(cli, CUSTOMER, QUEUE, EXPERT)
    pulls = [r for r in outbox_rows(cli) if r["ticket"] == key and EXPERT_NAME in r["body"]]
    assert sorted(r["channel"] for r in pulls) == ["email", "sms"]
    assert all(r["status"] == "pending" for r in pulls)

    said = ok(cli("ticket", "unpull", key, "--as", EXPERT)).strip()
    assert said == f"{key} is back in queue {QUEUE}; 2 messages cancelled"
    line = ok(cli("worker", "--once"))
    assert "failed 0" in line, line

    ours = {r["id"]: r for r in outbox_rows(cli) if r["ticket"] == key}
    assert {ours[r["id"]]["status"] for r in pulls} == {"cancelled"}
    to_customer = [m for m in mail_env.received if m.rcpt_tos == [CUSTOMER["email"]]]
    assert not [m for m in to_customer if EXPERT_NAME in str(m.message["Subject"])]
    assert not [r for r in ours.values() if r["status"] == "sent" and EXPERT_NAME in r["body"]]
    others = [r for r in outbox_rows(cli) if r["ticket"] != key and EXPERT_NAME in r["body"]]
    assert {r["status"] for r in others} == {"sent"}  # the worker did send the other pulls'
    assert ok(cli("ticket", "pull", QUEUE, "--as", EXPERT)).strip() == key


def test_a_message_already_being_sent_is_said_not_stopped(demo_desk: Engine, cli: Cli) -> None:
    key = check_in_and_pull(cli, CUSTOMER, QUEUE, EXPERT)
    with transaction(demo_desk) as session:
        ticket = ops.get_ticket(session, key)
        session.execute(
            update(OutboxMessage)
            .where(
                col(OutboxMessage.ticket_id) == ticket.id,
                col(OutboxMessage.channel) == "sms",
                col(OutboxMessage.body).contains(EXPERT_NAME),
            )
            .values(sending_at=utcnow())
        )
    result = cli("ticket", "unpull", key, "--as", EXPERT)
    assert result.stdout.strip() == (
        f"{key} is back in queue {QUEUE}; 1 message cancelled; 1 message already being sent "
        "could not be stopped"
    ), result
    with read_session(demo_desk) as session:
        ticket_id = ops.get_ticket(session, key).id
        statuses = session.exec(
            select(OutboxMessage.channel, OutboxMessage.status).where(
                OutboxMessage.ticket_id == ticket_id, col(OutboxMessage.body).contains(EXPERT_NAME)
            )
        ).all()
    assert sorted(statuses) == [("email", "cancelled"), ("sms", "pending")]
