"""Stale messages (issue 13, item 8) at the store and engine level, on SQLite and PostgreSQL.

The rule itself (``staleness.stale_reason``) is checked on hand-made moments for each kind of
message the demo desk sends; then on a desk: what ``enqueue`` remembers, what ``claim_fresh``
sets aside (status, reason, log line, no attempt counted) and hands over, the window, and the
workflow setting ``valid_minutes``. Through a real worker and real peers: ``test_delivery_stale``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import col, select

from cxdesk.engine.dispatch import dispatch_backlog, unit_of_work
from cxdesk.engine.outbox import (
    DEFAULT_VALID_FOR,
    LEASE,
    claim_due,
    enqueue,
    list_outbox,
    record_then_start,
    retry,
)
from cxdesk.engine.staleness import IN_DOUBT, Moment, claim_fresh, stale_reason
from cxdesk.engine.tasks import task_problems
from cxdesk.engine.workflows import save_workflow
from cxdesk.errors import Conflict
from cxdesk.store import tickets as ops
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.models import Event, OutboxMessage, utcnow
from cxdesk.store.pull import pull_next
from cxdesk.store.surveys import submit_response
from tests.desk import build_small_desk, pull

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
MAYA, KENJI = 1, 2
STATS, API = 10, 11


def moment(**changes: object) -> Moment:
    """A "ready" message written for Maya on Stats iQ while the ticket was open, unchanged."""
    values: dict[str, object] = {
        "outbox_id": 1,
        "valid_until": NOW + timedelta(minutes=15),
        "ticket_id": 7,
        "written_status": "open",
        "written_category": "open",
        "written_owner": MAYA,
        "written_team": STATS,
        "status": "open",
        "category": "open",
        "owner": MAYA,
        "team": STATS,
        "written_owner_name": "Maya Chen",
        "owner_name": "Maya Chen",
        "written_team_name": "Stats iQ",
        "team_name": "Stats iQ",
    }
    values.update(changes)
    return Moment(**values)  # type: ignore[arg-type]


RESOLVED = {"status": "resolved", "category": "resolved"}
CLOSED = {"status": "closed", "category": "resolved"}
CSAT = {"written_status": "resolved", "written_category": "resolved", **RESOLVED}


@pytest.mark.parametrize(
    ("case", "changes", "reason"),
    [
        ("ready, nothing changed", {}, None),
        ("ready, status moved within open", {"status": "Follow up later"}, None),
        ("ready, escalated: still open", {"status": "escalated"}, None),
        ("ready, resolved", RESOLVED, "ticket resolved"),
        ("ready, closed", CLOSED, "ticket closed"),
        ("ready, a custom resolved status", {"status": "Won't fix", "category": "resolved"},
         "ticket resolved (Won't fix)"),
        ("ready, another expert", {"owner": KENJI, "owner_name": "Kenji Sato"},
         "owner changed: Maya Chen -> Kenji Sato"),
        ("ready, back in the queue", {"owner": None, "owner_name": None},
         "owner changed: Maya Chen -> nobody"),
        ("ready, another team", {"team": API, "team_name": "API", "owner": None,
                                 "owner_name": None},
         "owner changed: Maya Chen -> nobody; team changed: Stats iQ -> API"),
        ("check-in confirmation, then pulled",
         {"written_owner": None, "written_owner_name": None, "written_status": "new"},
         "owner changed: nobody -> Maya Chen"),
        ("escalation notice to a team, then pulled",
         {"written_status": "escalated", "written_owner": None, "written_owner_name": None},
         "owner changed: nobody -> Maya Chen"),
        ("escalation notice, then resolved", {"written_status": "escalated", **RESOLVED},
         "ticket resolved"),
        ("CSAT, still resolved", CSAT, None),
        ("CSAT, closed since", {**CSAT, **CLOSED}, None),
        ("CSAT, reopened", {**CSAT, "status": "open", "category": "open"},
         "ticket reopened (open)"),
        ("CSAT, reopened to a custom status", {**CSAT, "status": "Follow up later",
                                               "category": "open"},
         "ticket reopened (Follow up later)"),
        ("written at close, reopened", {"written_status": "closed",
                                        "written_category": "resolved"},
         "ticket reopened (open)"),
        ("window passed", {"valid_until": NOW - timedelta(seconds=1)},
         "not sent in time (worth sending until 2026-12-07 11:59 UTC)"),
        ("resolved and window passed", {**RESOLVED, "valid_until": NOW - timedelta(hours=1)},
         "ticket resolved; not sent in time (worth sending until 2026-12-07 11:00 UTC)"),
        ("the window's last instant", {"valid_until": NOW}, None),
        ("no ticket: only the window", {"ticket_id": None, **RESOLVED}, None),
        ("no ticket, window passed", {"ticket_id": None, "valid_until": NOW - timedelta(minutes=2)},
         "not sent in time (worth sending until 2026-12-07 11:58 UTC)"),
        ("queued before migration 0008", {"written_status": None, "written_owner": None,
                                          "valid_until": None, **RESOLVED}, None),
    ],
)  # fmt: skip
def test_the_rule_for_each_kind_of_message(
    case: str, changes: dict[str, object], reason: str | None
) -> None:
    assert stale_reason(moment(**changes), NOW) == reason, case


# -- on a desk ---------------------------------------------------------------------------------

ANSWERS = {"first_name": "Zoë", "last_name": "O'Neil", "email": "zoe@example.com",
           "phone": "1-415-555-2671", "product": "360"}  # fmt: skip


@pytest.fixture
def desk(engine: Engine) -> Engine:
    """The small desk with the demo's closing-the-loop workflows and their windows."""
    build_small_desk(engine)
    with transaction(engine) as s:
        save_workflow(
            s, actor=None, name="Assigned", event="ticket.assigned_from_queue",
            tasks=[
                {"type": "send_sms", "to": "${tck://Field/customerPhone}", "valid_minutes": 15,
                 "body": "${tck://Field/ownerName} is ready for ${tck://kv/Firstname}"},
                {"type": "send_email", "to": "${tck://Field/customerEmail}", "valid_minutes": 15,
                 "subject": "${tck://Field/ownerName} is ready", "body": "See you"},
            ],
        )  # fmt: skip
        save_workflow(
            s, actor=None, name="CSAT", event="ticket.status_changed",
            conditions={"all": [{"field": "tck://Field/status", "op": "is", "value": "resolved"}]},
            tasks=[{"type": "send_email", "to": "${tck://Field/customerEmail}", "delay_minutes": 1,
                    "valid_minutes": 4320, "subject": "How did we do?", "body": "Tell us"}],
        )  # fmt: skip
    return engine


def check_in_and_pull(desk: Engine, expert: str = "omar", **answers: str) -> str:
    with unit_of_work(desk) as s:
        submit_response(s, actor=get_user(s, "vera"), survey_name="checkin",
                        answers={**ANSWERS, **answers})  # fmt: skip
    return pull(desk, expert, str(answers.get("product", "360")))


def change(desk: Engine, key: str, **changes: str) -> None:
    with unit_of_work(desk) as s:
        ops.update_ticket(s, actor=get_user(s, "admin"), key=key, comment="by hand",
                          changes=changes)  # fmt: skip


def rows(desk: Engine, key: str | None = None) -> list[OutboxMessage]:
    with read_session(desk) as s:
        statement = select(OutboxMessage).order_by(col(OutboxMessage.id))
        if key is not None:
            statement = statement.where(OutboxMessage.ticket_id == ops.get_ticket(s, key).id)
        return list(s.exec(statement).all())


def stale_log(desk: Engine, key: str) -> list[tuple[str | None, str | None, str | None]]:
    with read_session(desk) as s:
        ticket = ops.get_ticket(s, key)
        events = s.exec(
            select(Event).where(Event.ticket_id == ticket.id, Event.kind == "message.stale")
        ).all()
        return [(e.field_name, e.to_value, e.detail) for e in events]


def test_a_message_remembers_what_it_was_written_for_and_its_window(desk: Engine) -> None:
    key = check_in_and_pull(desk)
    change(desk, key, status="resolved")
    sms, email, csat = rows(desk, key)
    with read_session(desk) as s:
        ticket, omar = ops.get_ticket(s, key), get_user(s, "omar")
        causes = {
            e.kind: e.created_at
            for e in s.exec(select(Event).where(Event.ticket_id == ticket.id)).all()
            if e.kind in ("ticket.assigned_from_queue", "ticket.status_changed")
            and e.to_value in ("omar", "resolved")
        }
    pulled, resolved = causes["ticket.assigned_from_queue"], causes["ticket.status_changed"]
    for row in (sms, email):  # 15 minutes from the pull (their cause)
        assert (row.written_status, row.written_owner_id, row.written_team_id) == (
            "open",
            omar.id,
            ticket.team_id,
        )
        assert row.valid_until == pulled + timedelta(minutes=15)
    assert (csat.written_status, csat.written_owner_id) == ("resolved", omar.id)
    assert csat.valid_until == resolved + timedelta(minutes=1) + timedelta(
        days=3
    )  # after its delay


def test_without_a_template_window_the_default_applies_and_no_ticket_has_no_snapshot(
    desk: Engine,
) -> None:
    with transaction(desk) as s:
        message = enqueue(s, channel="email", to="a@example.com", subject="s", body="b",
                          delay=timedelta(minutes=5))  # fmt: skip
    assert message.written_status is None and message.written_owner_id is None
    assert message.valid_until == message.due_at + DEFAULT_VALID_FOR


def test_resolved_and_reassigned_tickets_messages_are_set_aside_not_handed_over(
    desk: Engine,
) -> None:
    resolved = check_in_and_pull(desk)
    moved = check_in_and_pull(desk, email="ann@example.com", phone="1-415-555-2672")
    fresh = check_in_and_pull(desk, email="bo@example.com", phone="1-415-555-2673")
    change(desk, resolved, status="resolved")
    change(desk, moved, owner="maya")

    claim = claim_fresh(desk, channel="email")
    sent_to = [m.to_addr for m in claim.messages]
    assert sent_to == ["bo@example.com"] and claim.stale == 2
    assert [m.to_addr for m in claim_fresh(desk, channel="sms").messages] == ["+14155552673"]

    for key, reason in ((resolved, "ticket resolved"), (moved, "owner changed: Omar -> Maya")):
        sms, email = rows(desk, key)[:2]
        for row in (sms, email):
            assert (row.status, row.last_error, row.attempts) == ("stale", reason, 0), key
            assert row.claimed_until is None and row.sent_at is None
        assert sorted(stale_log(desk, key)) == sorted(
            (row.channel, row.to_addr, f"outbox #{row.id} not sent: {reason}")
            for row in (sms, email)
        )
    assert stale_log(desk, fresh) == []
    with read_session(desk) as s:
        assert {m.id for m in list_outbox(s, status="stale")} == {
            r.id for key in (resolved, moved) for r in rows(desk, key)[:2]
        }
    # A stale message is never claimed again; the CSAT (written at "resolved") goes out. At
    # its due time the fresh ticket's rows, claimed above and never recorded, are due again
    # too (their 30 s lease ran out): they are the only others.
    due = rows(desk, resolved)[2].due_at
    later = claim_fresh(desk, channel="email", now=due).messages
    [csat] = [m for m in later if m.to_addr != "bo@example.com"]
    assert csat.subject == "How did we do?" and csat.ticket_id == rows(desk, resolved)[0].ticket_id
    assert len(later) == 2
    assert [m.to_addr for m in claim_fresh(desk, channel="sms", now=due).messages] == [
        "+14155552673"
    ]


def test_a_stale_message_a_deliverer_stopped_while_sending_says_it_may_have_been_sent(
    desk: Engine,
) -> None:
    key = check_in_and_pull(desk)
    dead = claim_due(desk, channel="email")
    [email] = dead.messages
    assert record_then_start(desk, dead, [], email.id) == ([], True)  # then it died
    change(desk, key, status="resolved")
    claim = claim_fresh(desk, channel="email", now=utcnow() + LEASE + timedelta(seconds=1))
    assert claim.messages == [] and claim.stale == 1
    [_sms, row, _csat] = rows(desk, key)
    assert (row.status, row.last_error) == ("stale", f"ticket resolved; {IN_DOUBT}")
    assert IN_DOUBT == "outcome unknown: an earlier attempt may have sent it"
    assert stale_log(desk, key) == [("email", row.to_addr, f"outbox #{row.id} not sent: "
                                     f"ticket resolved; {IN_DOUBT}")]  # fmt: skip


def test_a_csat_is_stale_when_the_ticket_is_reopened_not_when_closed(desk: Engine) -> None:
    closed = check_in_and_pull(desk)
    reopened = check_in_and_pull(desk, email="ann@example.com")
    for key in (closed, reopened):
        change(desk, key, status="resolved")
    change(desk, closed, status="closed")
    change(desk, reopened, status="open")
    later = utcnow() + timedelta(minutes=2)
    claim = claim_fresh(desk, channel="email", now=later)
    # Only the state at delivery counts: the reopened ticket is open with its owner again, so
    # its "ready" email goes out; the closed one's is stale, its CSAT is not.
    assert [(m.to_addr, m.subject) for m in claim.messages] == [
        ("ann@example.com", "Omar is ready"),
        ("zoe@example.com", "How did we do?"),
    ]
    [csat] = rows(desk, reopened)[2:]
    assert (csat.status, csat.last_error) == ("stale", "ticket reopened (open)")


def test_a_whole_batch_of_stale_messages_does_not_end_the_claim(desk: Engine) -> None:
    """``claim_fresh`` claims again when every row of a batch was stale, so an empty claim
    still means "nothing due" (the worker stops its pass on an empty claim)."""
    keys = [check_in_and_pull(desk, email=f"c{n}@example.com") for n in range(3)]
    for key in keys[:2]:
        change(desk, key, status="resolved")
    claim = claim_fresh(desk, channel="email", limit=1)
    assert [m.to_addr for m in claim.messages] == ["c2@example.com"] and claim.stale == 2
    assert claim_fresh(desk, channel="email", limit=1).messages == []


def test_past_its_window_a_message_is_stale_and_cannot_be_retried(desk: Engine) -> None:
    key = check_in_and_pull(desk)
    sms, email = rows(desk, key)
    assert email.valid_until is not None
    assert claim_fresh(desk, channel="email", now=email.valid_until).messages != []  # last instant

    with transaction(desk) as s:  # that worker died; its lease runs out after the window
        s.execute(update(OutboxMessage).values(claimed_until=None, attempts=0))
    claim = claim_fresh(desk, channel="email", now=email.valid_until + timedelta(seconds=1))
    assert claim.messages == [] and claim.stale == 1
    [email] = rows(desk, key)[1:]
    until = f"{email.valid_until:%Y-%m-%d %H:%M} UTC"
    assert (email.status, email.last_error, email.attempts) == (
        "stale",
        f"not sent in time (worth sending until {until})",
        0,
    )
    with pytest.raises(Conflict, match="failed or dead"), transaction(desk) as s:
        retry(s, outbox_id=email.id or 0)
    with transaction(desk) as s:  # a dead SMS past its window: retrying would only make it stale
        s.execute(update(OutboxMessage).where(OutboxMessage.id == sms.id)
                  .values(status="dead", valid_until=utcnow() - timedelta(seconds=1)))  # fmt: skip
    with pytest.raises(Conflict, match="it would go stale"), transaction(desk) as s:
        retry(s, outbox_id=sms.id or 0)
    assert rows(desk, key)[0].status == "dead"


def test_a_message_queued_late_for_an_old_event_has_that_much_less_time(desk: Engine) -> None:
    """The window counts from the cause: a pull whose workflows ran 20 minutes late (its
    puller died; the backlog pass queued them) writes "ready" messages already stale."""
    with unit_of_work(desk) as s:
        submit_response(s, actor=get_user(s, "vera"), survey_name="checkin", answers=ANSWERS)
        omar = get_user(s, "omar")
    pulled = pull_next(desk, actor=omar, queue_name="360")  # and the puller dies here
    with transaction(desk) as s:
        undispatched = (Event.ticket_id == pulled.id, col(Event.dispatched_at).is_(None))
        s.execute(
            update(Event).where(*undispatched).values(created_at=utcnow() - timedelta(minutes=20))
        )
    assert dispatch_backlog(desk) == 2
    assert [m.status for m in rows(desk)] == ["pending", "pending"]
    claim = claim_fresh(desk, channel="email")
    assert claim.messages == [] and claim.stale == 1
    assert (rows(desk)[1].last_error or "").startswith("not sent in time")


@pytest.mark.parametrize(
    ("value", "ok"),
    [(15, True), (0.5, True), (527040, True), (0, False), (-1, False), (527041, False),
     (True, False), ("15", False), (float("inf"), False), (float("nan"), False)],
)  # fmt: skip
def test_valid_minutes_is_checked_when_the_workflow_is_saved(
    engine: Engine, value: object, ok: bool
) -> None:
    task = {"type": "send_sms", "to": "+14155552671", "body": "hi", "valid_minutes": value}
    with read_session(engine) as s:
        problems = task_problems(s, task, questions=None)
    assert (problems == []) is ok, problems
    if not ok:
        assert problems == [
            "valid_minutes must be a number of minutes, more than 0 and at most 527040 (366 days)"
        ]


def test_a_message_queued_before_migration_0008_is_sent_as_before(desk: Engine) -> None:
    """The upgrade leaves the four columns NULL on rows already queued: no snapshot, no
    window, so they go out as they would have (for a ticket resolved since, two days late;
    the CSAT queued after the upgrade is within its 3 days)."""
    key = check_in_and_pull(desk)
    with transaction(desk) as s:
        s.execute(update(OutboxMessage).values(written_status=None, written_owner_id=None,
                                               written_team_id=None, valid_until=None))  # fmt: skip
    change(desk, key, status="resolved")
    claim = claim_fresh(desk, channel="email", now=utcnow() + timedelta(days=2))
    assert [m.subject for m in claim.messages] == ["Omar is ready", "How did we do?"]
    assert claim.stale == 0
