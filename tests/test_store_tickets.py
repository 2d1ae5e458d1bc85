"""Desk operations on a real database (SQLite file and PostgreSQL): check-in to resolve."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import Conflict, NotFound, PermissionDenied, QueueEmpty, ValidationFailed
from cxdesk.store import tickets as ops
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.events import record_event
from cxdesk.store.models import (
    Attachment,
    Comment,
    Event,
    Membership,
    Queue,
    SurveyResponse,
    Team,
    Ticket,
    TicketData,
    WorkflowRun,
)
from cxdesk.store.pull import pull_next
from cxdesk.store.surveys import submit_response
from tests.desk import build_small_desk, pull

GOOD_ANSWERS = {
    "first_name": "Zoë",
    "last_name": "Ann O'Neil",
    "email": "zoe@example.com",
    "phone": "1-415-555-2671",
    "username": "zoe.oneil",
    "product": "360",
    "notes": "Has to leave by 3pm",
}


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    return engine


def count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def check_in(engine: Engine, **overrides: str) -> Ticket:
    with unit_of_work(engine) as s:
        response = submit_response(
            s,
            actor=get_user(s, "vera"),
            survey_name="checkin",
            answers={**GOOD_ANSWERS, **overrides},
        )
    with read_session(engine) as s:  # workflows ran when the unit of work committed
        return s.exec(select(Ticket).where(Ticket.response_id == response.id)).one()


def test_check_in_creates_ticket_with_ordered_data(desk: Engine) -> None:
    ticket = check_in(desk)
    with read_session(desk) as s:
        record = ops.tickets_to_dicts(s, [s.get(Ticket, ticket.id)])[0]  # type: ignore[list-item]
        runs = s.exec(select(WorkflowRun).where(col(WorkflowRun.matched))).all()
    assert record["key"] == f"EXP-{ticket.id}"
    assert record["title"] == "Zoë Ann O'Neil needs help with 360"
    assert record["team"] == record["origin_team"] == "360"
    assert record["status"] == "new" and record["owner"] is None
    assert record["customer_name"] == "Zoë Ann O'Neil"
    assert record["customer_phone"] == "+14155552671"
    assert record["customer_comment"] == "Has to leave by 3pm"
    assert record["source"] == "checkin"
    data = record["data"]
    assert isinstance(data, dict)
    assert list(data) == ["Firstname", "Lastname", "Email", "Phone", "Username", "Product"]
    assert data["Phone"] == "+14155552671"
    assert len(runs) == 1  # only the 360 workflow matched


def test_bad_check_in_saves_nothing(desk: Engine) -> None:
    with pytest.raises(ValidationFailed) as failure:
        check_in(desk, email="not-an-email", phone="12", product="Nope", first_name="")
    assert set(failure.value.errors) == {"email", "phone", "product", "first_name"}
    assert "valid email" in failure.value.errors["email"]
    with read_session(desk) as s:
        assert count(s, SurveyResponse) == 0
        assert count(s, Ticket) == 0
        assert count(s, Event) == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("first_name", "Ada\x00", "control characters"),
        ("first_name", "x" * 201, "too long"),
        ("product", "stats iq", None),  # case-insensitive: stored as "Stats iQ"
        ("phone", "+33 6 12 34 56 78", None),
        ("unknown_question", "x", "not a question"),
    ],
)
def test_answer_validation(desk: Engine, field: str, value: str, message: str | None) -> None:
    if message is None:
        ticket = check_in(desk, **{field: value})
        with read_session(desk) as s:
            response = s.get(SurveyResponse, ticket.response_id)
            assert response is not None
            assert response.answers[field] in ("Stats iQ", "+33612345678")
        return
    with pytest.raises(ValidationFailed, match=message):
        check_in(desk, **{field: value})


def test_pull_assigns_oldest_and_logs(desk: Engine) -> None:
    first, second = check_in(desk), check_in(desk)
    assert pull(desk, "omar", "360") == first.key
    with read_session(desk) as s:
        ticket = ops.get_ticket(s, first.key or "")
        omar = get_user(s, "omar")
        assert (ticket.owner_id, ticket.status, ticket.pulled_from) == (omar.id, "open", "360")
        events = s.exec(select(Event).where(Event.ticket_id == ticket.id).order_by(col(Event.id)))
        logged = [(e.kind, e.actor_id, e.field_name, e.from_value, e.to_value, e.detail,
                   e.created_at == ticket.updated_at, e.dispatched_at is not None)
                  for e in events]  # fmt: skip
    assert logged[0][0] == "ticket.created"
    assert logged[1:] == [
        ("ticket.assigned_from_queue", omar.id, "owner", None, "omar", "360", True, True),
        ("ticket.status_changed", omar.id, "status", "new", "open", None, True, True),
    ]
    with read_session(desk) as s:  # one pull, one ticket: the next still waits, untouched
        waiting = s.get(Ticket, second.id)
        assert waiting is not None and (waiting.owner_id, waiting.status) == (None, "new")
    assert pull(desk, "maya", "360") == second.key
    with pytest.raises(QueueEmpty, match="^No tickets waiting in 360$"):
        pull(desk, "maya", "360")


def test_pull_of_an_open_ticket_logs_no_status_change(desk: Engine) -> None:
    ticket = check_in(desk)
    key = ticket.key or ""
    pull(desk, "omar", "360")
    update(desk, key, "omar", owner="")  # back in the queue, still open
    assert pull(desk, "maya", "360") == key
    with read_session(desk) as s:
        kinds = s.exec(select(Event.kind).where(Event.ticket_id == ticket.id)
                       .order_by(col(Event.id))).all()  # fmt: skip
    assert kinds[-1] == "ticket.assigned_from_queue"
    assert kinds.count("ticket.status_changed") == 1  # new -> open, once


def test_pull_refused_off_team(desk: Engine) -> None:
    check_in(desk, product="Stats iQ")
    with pytest.raises(PermissionDenied, match="^You are not on team Stats iQ$"):
        pull(desk, "omar", "Stats iQ")
    with pytest.raises(NotFound, match="No queue named"):
        pull(desk, "omar", "Nope")
    with read_session(desk) as s:
        assert s.exec(select(Ticket)).one().owner_id is None
        assert s.exec(select(Ticket)).one().pulled_from is None


def test_pull_sees_the_team_and_queue_change_between_pulls(desk: Engine) -> None:
    """What a pull remembers of its queue (per connection) never outlives a change: a
    caller taken off the team is refused, a queue moved to another team pulls from it."""
    for product in ("360", "360", "Stats iQ"):
        check_in(desk, product=product)
    with desk.connect() as connection:  # one driver connection: its remembered scope is used
        with read_session(desk) as s:
            maya, omar = get_user(s, "maya"), get_user(s, "omar")
        pull_next(connection, actor=omar, queue_name="360")
        with transaction(desk) as s:  # omar leaves 360
            s.delete(s.exec(select(Membership).where(Membership.user_id == omar.id)).one())
        with pytest.raises(PermissionDenied, match="^You are not on team 360$"):
            pull_next(connection, actor=omar, queue_name="360")
        with transaction(desk) as s:  # queue 360 now serves Stats iQ
            stats = s.exec(select(Team).where(Team.name == "Stats iQ")).one()
            s.exec(select(Queue).where(Queue.name == "360")).one().team_id = stats.id or 0
        pulled = pull_next(connection, actor=maya, queue_name="360")
    with read_session(desk) as s:
        ticket = s.get(Ticket, pulled.id)
        assert ticket is not None and ticket.team_id == stats.id
        assert ticket.owner_id == maya.id


def pulled_ticket(desk: Engine, expert: str = "maya") -> str:
    check_in(desk)
    return pull(desk, expert, "360")


def update(desk: Engine, key: str, who: str, comment: str = "note", **changes: str) -> Ticket:
    with unit_of_work(desk) as s:
        return ops.update_ticket(
            s, actor=get_user(s, who), key=key, comment=comment, changes=changes
        )


def test_update_requires_comment_and_keeps_records_true(desk: Engine) -> None:
    key = pulled_ticket(desk)
    with pytest.raises(ValidationFailed) as failure:
        update(desk, key, "maya", comment=" ", status="resolved", customer_email="x@y.z")
    assert set(failure.value.errors) == {"comment", "customer_email"}
    with pytest.raises(ValidationFailed, match="created_at"):
        update(desk, key, "maya", created_at="2020-01-01")
    with read_session(desk) as s:
        ticket = ops.get_ticket(s, key)
        assert ticket.status == "open" and ticket.customer_email == "zoe@example.com"
        assert count(s, Comment) == 0


def test_update_logs_each_change_from_to(desk: Engine) -> None:
    key = pulled_ticket(desk)
    update(desk, key, "maya", comment="Needs stats", priority="high", team="Stats iQ")
    update(desk, key, "maya", comment="Parked", status="Follow up later")
    update(desk, key, "maya", comment="Fixed", status="resolved")
    with read_session(desk) as s:
        ticket = ops.get_ticket(s, key)
        assert ticket.priority == "high" and ticket.status == "resolved"
        assert ticket.resolved_at is not None
        assert ticket.owner_id == get_user(s, "maya").id  # maya is on Stats iQ too
        changes = s.exec(
            select(Event.field_name, Event.from_value, Event.to_value)
            .where(Event.ticket_id == ticket.id, col(Event.field_name).is_not(None))
            .order_by(col(Event.id))
        ).all()
        comments = [c.body for c in ops.ticket_comments(s, ticket)]
    assert ("priority", "medium", "high") in changes
    assert ("team", "360", "Stats iQ") in changes
    assert ("status", "open", "Follow up later") in changes
    assert ("status", "Follow up later", "resolved") in changes
    assert comments == ["Needs stats", "Parked", "Fixed"]


def test_owner_must_be_on_team_and_single_member_team_defaults(desk: Engine) -> None:
    key = pulled_ticket(desk)
    with pytest.raises(ValidationFailed, match="kenji is not on team 360"):
        update(desk, key, "maya", owner="kenji")
    update(desk, key, "maya", comment="Solo's product", team="Solo")
    with read_session(desk) as s:
        ticket = ops.get_ticket(s, key)
        assert ticket.owner_id == get_user(s, "kenji").id  # Solo's only member
    update(desk, key, "kenji", comment="Back to 360", team="360")
    with read_session(desk) as s:
        assert ops.get_ticket(s, key).owner_id is None  # kenji is not on 360, two members


def test_who_may_update(desk: Engine) -> None:
    key = pulled_ticket(desk)
    with pytest.raises(PermissionDenied, match="volunteer"):
        update(desk, key, "vera", status="resolved")
    with pytest.raises(PermissionDenied, match="not on the team"):
        update(desk, key, "kenji", status="resolved")
    update(desk, key, "admin", status="escalated")
    with read_session(desk) as s:
        ticket = ops.get_ticket(s, key)
        assert ticket.status == "escalated" and ticket.escalated_at is not None
        kinds = s.exec(select(Event.kind).where(Event.ticket_id == ticket.id)).all()
    assert "ticket.escalated" in kinds


def comment_with(desk: Engine, key: str, files: list[ops.NewAttachment]) -> None:
    with unit_of_work(desk) as s:
        ops.add_comment(
            s, actor=get_user(s, "maya"), key=key, body="See attached", attachments=files
        )


def test_attachments_within_limits_are_stored(desk: Engine) -> None:
    key = pulled_ticket(desk)
    files = [ops.NewAttachment(f"log{i}.txt", b"x" * ops.MAX_ATTACHMENT_BYTES) for i in range(4)]
    files.append(ops.NewAttachment("trace.HAR", b"{}"))
    comment_with(desk, key, files)
    with read_session(desk) as s:
        stored = s.exec(select(Attachment).order_by(col(Attachment.id))).all()
    assert [a.filename for a in stored][-1] == "trace.HAR"
    assert len(stored) == 5 and stored[0].size == ops.MAX_ATTACHMENT_BYTES


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([ops.NewAttachment(f"f{i}.txt", b"x") for i in range(6)], "at most 5"),
        ([ops.NewAttachment("big.pdf", b"x" * (ops.MAX_ATTACHMENT_BYTES + 1))], "500 KB"),
        ([ops.NewAttachment("ok.png", b"x"), ops.NewAttachment("run.exe", b"MZ")], "not allowed"),
        ([ops.NewAttachment("noext", b"x")], "not allowed"),
    ],
)
def test_bad_attachments_store_nothing(
    desk: Engine, files: list[ops.NewAttachment], message: str
) -> None:
    key = pulled_ticket(desk)
    with pytest.raises(ValidationFailed, match=message):
        comment_with(desk, key, files)
    with read_session(desk) as s:
        assert count(s, Attachment) == 0 and count(s, Comment) == 0


def test_manual_ticket_rules(desk: Engine) -> None:
    with unit_of_work(desk) as s:
        ticket = ops.create_manual_ticket(
            s, actor=get_user(s, "maya"), customer_email="c@example.com", team="Solo",
            comment="Phone call: export fails\nmore detail", priority="high",
        )  # fmt: skip
        assert ticket.owner_id == get_user(s, "kenji").id  # Solo has one member
        assert ticket.title == "Phone call: export fails" and ticket.source == "manual"
    with pytest.raises(PermissionDenied), unit_of_work(desk) as s:
        ops.create_manual_ticket(
            s, actor=get_user(s, "vera"), customer_email="c@example.com", team="360", comment="x"
        )
    with pytest.raises(ValidationFailed) as failure, unit_of_work(desk) as s:
        ops.create_manual_ticket(
            s, actor=get_user(s, "maya"), customer_email="nope", team="360", comment="",
            priority="urgent",
        )  # fmt: skip
    assert set(failure.value.errors) == {"customer_email", "comment", "priority"}
    with read_session(desk) as s:
        assert count(s, Ticket) == 1


def test_requester_closes_then_leaves_feedback_once(desk: Engine) -> None:
    with unit_of_work(desk) as s:
        key = ops.create_manual_ticket(
            s, actor=get_user(s, "omar"), customer_email="c@example.com", team="360", comment="x"
        ).key
    assert key is not None
    with pytest.raises(PermissionDenied), unit_of_work(desk) as s:
        ops.close_by_requester(s, actor=get_user(s, "maya"), key=key)
    with pytest.raises(Conflict, match="closed"), unit_of_work(desk) as s:
        ops.leave_feedback(s, actor=get_user(s, "omar"), key=key, rating=5)
    with unit_of_work(desk) as s:
        assert ops.close_by_requester(s, actor=get_user(s, "omar"), key=key).status == "closed"
    with pytest.raises(Conflict, match="This ticket has been closed"), unit_of_work(desk) as s:
        ops.close_by_requester(s, actor=get_user(s, "omar"), key=key)
    with pytest.raises(ValidationFailed), unit_of_work(desk) as s:
        ops.leave_feedback(s, actor=get_user(s, "omar"), key=key, rating=9)
    with unit_of_work(desk) as s:
        ops.leave_feedback(s, actor=get_user(s, "omar"), key=key, rating=4, comment="Quick")
    with pytest.raises(Conflict, match="already given"), unit_of_work(desk) as s:
        ops.leave_feedback(s, actor=get_user(s, "omar"), key=key, rating=1)
    with read_session(desk) as s:
        ticket = ops.get_ticket(s, key)
        assert (ticket.feedback_rating, ticket.feedback_comment) == (4, "Quick")
        assert ticket.closed_at is not None


def test_failed_operation_rolls_back_everything(desk: Engine) -> None:
    """A failure after some writes (here: an unknown owner) leaves no trace."""
    key = pulled_ticket(desk)
    with read_session(desk) as s:
        events_before = count(s, Event)
    with pytest.raises(Exception, match="No user named"), transaction(desk) as s:
        ops.update_ticket(
            s, actor=get_user(s, "maya"), key=key, comment="x",
            changes={"priority": "critical", "owner": "ghost"},
        )  # fmt: skip
    with read_session(desk) as s:
        assert ops.get_ticket(s, key).priority == "medium"
        assert count(s, Event) == events_before
        assert count(s, TicketData) == 6


def test_an_event_kind_the_desk_does_not_know_is_a_programming_error(engine: Engine) -> None:
    """The log's kinds are a closed list (the stream filters on it; the log has no index on
    kind): a new kind written without adding it there fails at once, and writes nothing."""
    with pytest.raises(ValueError, match="ticket.renamed"), transaction(engine) as session:
        record_event(session, kind="ticket.renamed", actor=None)
    with read_session(engine) as session:
        assert session.exec(select(func.count()).select_from(Event)).one() == 0
