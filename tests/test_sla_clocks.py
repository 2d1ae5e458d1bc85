"""Each ticket's SLA clocks (``store.sla``) as the desk's operations move them, on SQLite and
PostgreSQL, with a controlled clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import QueueEmpty
from cxdesk.store import directory, inbound
from cxdesk.store.db import read_session, transaction
from cxdesk.store.models import Ticket, simulated_clock
from cxdesk.store.replies import reply_to_customer
from cxdesk.store.sla import SlaState, sla_view
from cxdesk.store.sla_policies import get_policy, save_calendar, save_policy
from cxdesk.store.sms_inbound import InboundSms, receive_sms
from cxdesk.store.surveys import submit_response
from cxdesk.store.tickets import close_by_requester, create_manual_ticket, get_ticket, update_ticket
from cxdesk.store.unpull import unpull
from tests.desk import build_small_desk, pull

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # a Monday
STANDARD = {
    "first_response_minutes": 10,
    "next_response_minutes": 15,
    "resolution_minutes": 45,
    "warn_percent": 75,
}


class Clock:
    """The desk's ``utcnow()`` for a test: moved by hand."""

    def __init__(self) -> None:
        self.now = T0

    def at(self, minutes: float) -> datetime:
        self.now = T0 + timedelta(minutes=minutes)
        return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    moving = Clock()
    with simulated_clock(lambda: moving.now):
        yield moving


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    with transaction(engine) as s:
        directory.add_status(s, actor=None, name="Waiting on customer", category="paused")
        save_policy(s, name="Urgent 360", settings={"team": "360", "priority": "high",
                                                    "first_response_minutes": 5})  # fmt: skip
        save_policy(s, name="Standard", settings=STANDARD)
    return engine


def check_in(engine: Engine, product: str = "360") -> str:
    with unit_of_work(engine) as s:
        submit_response(
            s,
            actor=directory.get_user(s, "vera"),
            survey_name="checkin",
            answers={"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com",
                     "product": product},
        )  # fmt: skip
    with read_session(engine) as s:
        ticket = s.exec(select(Ticket).order_by(col(Ticket.id).desc())).first()
        assert ticket is not None and ticket.key is not None
        return ticket.key


def ticket_now(engine: Engine, key: str) -> Ticket:
    with read_session(engine) as s:
        ticket = get_ticket(s, key)
        s.expunge(ticket)
        return ticket


def update(engine: Engine, key: str, **changes: str) -> None:
    with unit_of_work(engine) as s:
        actor = directory.get_user(s, "maya")
        update_ticket(s, actor=actor, key=key, comment="note", changes=changes)


def reply(engine: Engine, key: str) -> None:
    with unit_of_work(engine) as s:
        reply_to_customer(s, actor=directory.get_user(s, "maya"), key=key, body="On it")


def customer_writes(engine: Engine, key: str) -> None:
    with unit_of_work(engine) as s:
        ticket = get_ticket(s, key, lock=True)
        inbound.add_customer_message(s, ticket, channel="email", sender="ann@example.com",
                                     body="Any news?")  # fmt: skip


def minutes(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (aware - T0).total_seconds() / 60


def test_a_checked_in_ticket_gets_its_due_times(desk: Engine, clock: Clock) -> None:
    key = check_in(desk)
    ticket = ticket_now(desk, key)
    assert [minutes(ticket.first_response_due_at), minutes(ticket.first_response_warn_at)] == [
        10,
        7.5,
    ]
    assert [minutes(ticket.resolution_due_at), minutes(ticket.resolution_warn_at)] == [45, 33.75]
    assert ticket.next_response_due_at is None  # no customer message after a response yet
    view = sla_view(ticket, clock.at(8))
    assert view is not None and view.state == SlaState.warning
    assert minutes(view.due_at) == 10


def test_desk_hours_count_from_the_next_opening(desk: Engine, clock: Clock) -> None:
    with transaction(desk) as s:
        office = {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]]}
        save_calendar(s, name="Office", time_zone="Europe/Paris", weekly=office, exceptions=[])
        save_policy(s, name="Standard", settings={**STANDARD, "calendar": "Office"})
    clock.at(5 * 60 + 55)  # Monday 15:55 UTC = 16:55 in Paris: 5 minutes before closing
    ticket = ticket_now(desk, check_in(desk))
    # 5 minutes on Monday, 5 on Tuesday from 09:00 Paris (08:00 UTC).
    assert ticket.first_response_due_at is not None
    assert minutes(ticket.first_response_due_at) == 22 * 60 + 5


def test_waiting_on_the_customer_moves_the_due_times_out(desk: Engine, clock: Clock) -> None:
    key = check_in(desk)
    clock.at(5)
    update(desk, key, status="Waiting on customer")
    paused = ticket_now(desk, key)
    assert minutes(paused.sla_paused_at) == 5
    view = sla_view(paused, clock.at(30))
    assert view is not None and view.state == SlaState.paused  # not breached while paused
    update(desk, key, status="open")  # at 30: paused 25 minutes
    ticket = ticket_now(desk, key)
    assert ticket.sla_paused_at is None
    assert [minutes(ticket.first_response_due_at), minutes(ticket.first_response_warn_at)] == [
        35,
        32.5,
    ]
    assert minutes(ticket.resolution_due_at) == 70


def test_a_reply_then_a_pull_first_response_is_the_reply(desk: Engine, clock: Clock) -> None:
    key = check_in(desk)
    clock.at(2)
    reply(desk, key)
    clock.at(4)
    assert pull(desk, "maya", "360") == key
    ticket = ticket_now(desk, key)
    assert minutes(ticket.first_responded_at) == 2  # the pull keeps the first one
    view = sla_view(ticket, clock.at(60))
    assert view is not None and view.targets[0].state == SlaState.met


def test_a_pull_marks_the_first_response(desk: Engine, clock: Clock) -> None:
    key = check_in(desk)
    clock.at(3)
    assert pull(desk, "omar", "360") == key
    assert minutes(ticket_now(desk, key).first_responded_at) == 3


def test_a_customer_message_starts_the_next_response_clock(desk: Engine, clock: Clock) -> None:
    key = check_in(desk)
    customer_writes(desk, key)  # before any response: the first-response clock runs
    assert ticket_now(desk, key).next_response_since is None
    clock.at(2)
    reply(desk, key)
    clock.at(20)
    customer_writes(desk, key)
    clock.at(22)
    customer_writes(desk, key)  # the clock already runs: the customer waits since 20
    ticket = ticket_now(desk, key)
    assert [minutes(ticket.next_response_since), minutes(ticket.next_response_due_at)] == [20, 35]
    assert ticket.next_responded_at is None
    clock.at(30)
    reply(desk, key)
    assert minutes(ticket_now(desk, key).next_responded_at) == 30


def test_the_customer_writing_ends_the_wait_on_them(desk: Engine, clock: Clock) -> None:
    key = check_in(desk)
    reply(desk, key)
    update(desk, key, status="Waiting on customer")
    clock.at(10)
    customer_writes(desk, key)
    ticket = ticket_now(desk, key)
    assert (ticket.status, ticket.sla_paused_at) == ("open", None)
    assert minutes(ticket.resolution_due_at) == 55  # paused 10 minutes
    assert [minutes(ticket.next_response_since), minutes(ticket.next_response_due_at)] == [10, 25]


def test_a_priority_change_applies_the_other_policy_from_creation(
    desk: Engine, clock: Clock
) -> None:
    key = check_in(desk)
    clock.at(1)
    update(desk, key, status="Waiting on customer")
    clock.at(3)
    update(desk, key, status="open")  # 2 minutes paused: first response due 12
    clock.at(4)
    update(desk, key, priority="high")
    ticket = ticket_now(desk, key)
    with read_session(desk) as s:
        assert ticket.sla_policy_id == get_policy(s, "Urgent 360").id
    # 5 minutes from creation, plus the 2 paused; no resolution target in that policy.
    assert minutes(ticket.first_response_due_at) == 7
    assert ticket.resolution_due_at is None


def test_a_reopened_ticket_resumes_with_the_time_it_had_left(desk: Engine, clock: Clock) -> None:
    key = check_in(desk)
    reply(desk, key)
    clock.at(10)
    update(desk, key, status="resolved")
    clock.at(30)
    update(desk, key, status="open")
    ticket = ticket_now(desk, key)
    assert ticket.resolved_at is None
    assert minutes(ticket.resolution_due_at) == 65  # 45 + the 20 it stood resolved


def test_a_text_from_the_customer_lands_on_their_paused_ticket(desk: Engine, clock: Clock) -> None:
    with unit_of_work(desk) as s:
        submit_response(
            s,
            actor=directory.get_user(s, "vera"),
            survey_name="checkin",
            answers={"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com",
                     "phone": "+14155552671", "product": "360"},
        )  # fmt: skip
    key = check_in(desk)  # a later ticket without that phone
    with read_session(desk) as s:
        [texted] = [t.key for t in s.exec(select(Ticket)) if t.customer_phone == "+14155552671"]
    assert texted is not None and texted != key
    update(desk, texted, status="Waiting on customer")
    clock.at(6)
    with unit_of_work(desk) as s:
        outcome = receive_sms(s, InboundSms(sid="SM" + "1" * 32, sender="+14155552671", body="Hi"))
    assert (outcome.outcome, outcome.ticket_key) == ("added", texted)  # not a new ticket
    ticket = ticket_now(desk, texted)
    assert (ticket.status, ticket.sla_paused_at) == ("open", None)
    assert minutes(ticket.first_response_due_at) == 16  # paused 6 minutes


def test_an_undone_pull_was_no_first_response(desk: Engine, clock: Clock) -> None:
    key = check_in(desk)
    clock.at(3)
    assert pull(desk, "omar", "360") == key
    with unit_of_work(desk) as s:
        unpull(s, actor=directory.get_user(s, "omar"), key=key, now=clock.at(3.1))
    assert ticket_now(desk, key).first_responded_at is None
    clock.at(5)
    assert pull(desk, "maya", "360") == key
    assert minutes(ticket_now(desk, key).first_responded_at) == 5


def test_a_paused_ticket_is_unresolved_but_not_handed_out(desk: Engine, clock: Clock) -> None:
    with unit_of_work(desk) as s:
        maya = directory.get_user(s, "maya")
        ticket = create_manual_ticket(s, actor=maya, customer_email="ann@example.com", team="360",
                                      comment="Export fails", owner="")  # fmt: skip
        key = ticket.key
    assert key is not None
    update(desk, key, status="Waiting on customer", owner="")
    with pytest.raises(QueueEmpty):  # waiting on the customer, not on an expert
        pull(desk, "omar", "360")
    with unit_of_work(desk) as s:  # its requester may still close it
        close_by_requester(s, actor=directory.get_user(s, "maya"), key=key)
    assert ticket_now(desk, key).status == "closed"


def test_a_status_only_update_keeps_a_policy_disabled_since(desk: Engine, clock: Clock) -> None:
    """A policy switched off (or reordered) later leaves the tickets it timed alone: only a
    team or priority change chooses the policy again."""
    key = check_in(desk)
    timed = ticket_now(desk, key)
    with transaction(desk) as s:
        policy = get_policy(s, "Standard")
        policy.enabled = False
        s.add(policy)
    clock.at(3)
    update(desk, key, status="open")
    after = ticket_now(desk, key)
    assert (after.sla_policy_id, after.resolution_due_at) == (
        timed.sla_policy_id,
        timed.resolution_due_at,
    )
    update(desk, key, priority="low")  # now the policy is chosen again: none matches
    assert ticket_now(desk, key).sla_policy_id is None
