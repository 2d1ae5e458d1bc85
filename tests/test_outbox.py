"""The outbox on both databases: queued with its cause, claimed once, retried, dead, logged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import col, select

from cxdesk.engine.channels import DeliveryResult
from cxdesk.engine.dispatch import dispatch_backlog, dispatch_ticket_events, unit_of_work
from cxdesk.engine.outbox import (
    LEASE,
    MAX_ATTEMPTS,
    claim_due,
    list_outbox,
    outbox_to_dicts,
    record_result,
    record_then_start,
    retry,
)
from cxdesk.engine.workflows import save_workflow
from cxdesk.errors import Conflict
from cxdesk.store import tickets as ops
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.models import Event, OutboxMessage, utcnow
from cxdesk.store.pull import pull_next
from cxdesk.store.surveys import submit_response
from tests.desk import build_small_desk, pull

ANSWERS = {
    "first_name": "Zoë",
    "last_name": "O'Neil",
    "email": "zoe@example.com",
    "phone": "1-415-555-2671",
    "product": "360",
}


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    with transaction(engine) as s:
        save_workflow(
            s,
            actor=None,
            name="Assigned",
            event="ticket.assigned_from_queue",
            tasks=[
                {"type": "send_sms", "to": "${tck://Field/customerPhone}",
                 "body": "${tck://Field/ownerName} is ready for ${tck://kv/Firstname}"},
                {"type": "send_email", "to": "${tck://Field/customerEmail}",
                 "subject": "${tck://Field/ownerName} is ready", "body": "See you",
                 "reply_to": "${tck://Field/ownerEmail}"},
            ],
        )  # fmt: skip
        save_workflow(
            s,
            actor=None,
            name="CSAT",
            event="ticket.status_changed",
            conditions={"all": [{"field": "tck://Field/status", "op": "is", "value": "resolved"}]},
            tasks=[{"type": "send_email", "to": "${tck://Field/customerEmail}", "delay_minutes": 5,
                    "subject": "How did we do?", "body": "https://x.example/f?r=${tck://Field/ownerName}"}],
        )  # fmt: skip
    return engine


def pull_one(desk: Engine, **overrides: str) -> str:
    with unit_of_work(desk) as s:
        submit_response(s, actor=get_user(s, "vera"), survey_name="checkin",
                        answers={**ANSWERS, **overrides})  # fmt: skip
    return pull(desk, "omar", "360")


def test_pull_queues_sms_and_email_naming_the_expert(desk: Engine) -> None:
    key = pull_one(desk)
    with read_session(desk) as s:
        rows = outbox_to_dicts(s, list_outbox(s))
    assert [(r["channel"], r["to"], r["status"], r["ticket"]) for r in rows] == [
        ("sms", "+14155552671", "pending", key),
        ("email", "zoe@example.com", "pending", key),
    ]
    assert rows[0]["body"] == "Omar is ready for Zoë"
    assert rows[1]["subject"] == "Omar is ready"


def test_a_pull_whose_workflows_did_not_run_is_notified_by_the_backlog_pass(
    desk: Engine,
) -> None:
    """The pull commits before its workflows run: if the puller died in between, the
    worker's backlog pass sends the same SMS and email, once."""
    with unit_of_work(desk) as s:
        submit_response(s, actor=get_user(s, "vera"), survey_name="checkin", answers=ANSWERS)
    with read_session(desk) as s:
        omar = get_user(s, "omar")
    pulled = pull_next(desk, actor=omar, queue_name="360")  # and the process dies here
    with read_session(desk) as s:
        assert list_outbox(s) == []
    assert dispatch_backlog(desk) == 2  # assigned_from_queue, status_changed
    assert dispatch_backlog(desk) == 0
    assert dispatch_ticket_events(desk, pulled.id) == 0
    with read_session(desk) as s:
        rows = outbox_to_dicts(s, list_outbox(s))
    assert [(r["channel"], r["ticket"], r["body"]) for r in rows] == [
        ("sms", pulled.key, "Omar is ready for Zoë"),
        ("email", pulled.key, rows[1]["body"]),
    ]


def test_no_phone_skips_the_sms_and_says_so(desk: Engine) -> None:
    key = pull_one(desk, phone="")
    with read_session(desk) as s:
        channels = [m.channel for m in list_outbox(s)]
        ticket = ops.get_ticket(s, key)
        kinds = s.exec(select(Event.kind).where(Event.ticket_id == ticket.id)).all()
    assert channels == ["email"]
    assert "message.skipped" in kinds


def test_resolve_queues_csat_after_its_delay_and_custom_status_does_not(desk: Engine) -> None:
    key = pull_one(desk)
    with unit_of_work(desk) as s:
        ops.update_ticket(s, actor=get_user(s, "omar"), key=key, comment="parked",
                          changes={"status": "Follow up later"})  # fmt: skip
    with read_session(desk) as s:
        assert len(list_outbox(s)) == 2
    with unit_of_work(desk) as s:
        ops.update_ticket(s, actor=get_user(s, "omar"), key=key, comment="done",
                          changes={"status": "resolved"})  # fmt: skip
    with read_session(desk) as s:
        csat = list_outbox(s)[-1]
    assert csat.subject == "How did we do?" and csat.body.endswith("r=Omar")
    assert csat.due_at > utcnow() + timedelta(minutes=4)
    assert claim_due(desk, channel="email", limit=10).messages[-1].id != csat.id


def test_a_row_is_claimed_by_one_worker_until_its_lease_runs_out(desk: Engine) -> None:
    pull_one(desk)
    now = utcnow()
    first = claim_due(desk, channel="email", now=now)
    assert len(first.messages) == 1 and first.messages[0].attempts == 1
    almost = now + LEASE - timedelta(seconds=1)  # however long this test took so far
    assert claim_due(desk, channel="email", now=almost).messages == []  # leased
    later = now + LEASE + timedelta(seconds=1)
    takeover = claim_due(desk, channel="email", now=later)  # the first worker died
    assert [m.id for m in takeover.messages] == [first.messages[0].id]
    message_id = first.messages[0].id or 0
    assert not record_result(desk, first, DeliveryResult(message_id, True, "<x@y>", None, False))
    assert record_result(desk, takeover, DeliveryResult(message_id, True, "<x@y>", None, False))
    with read_session(desk) as s:
        row = s.get(OutboxMessage, message_id)
        assert row is not None
        assert (row.status, row.attempts, row.provider_id) == ("sent", 2, "<x@y>")


def test_a_send_starts_only_within_its_lease_and_renews_it(desk: Engine) -> None:
    """The "sending" mark is refused once the row's lease ran out, even if nobody took it
    over yet (another deliverer could at any moment and send it too); given, it renews the
    lease, so nobody takes the row over while it is being sent."""
    pull_one(desk)
    stalled = claim_due(desk, channel="email")
    [message] = stalled.messages
    message_id = message.id or 0
    with transaction(desk) as s:  # its deliverer stalled past its lease (not renewed)
        s.execute(update(OutboxMessage).values(claimed_until=utcnow() - timedelta(seconds=1)))
    assert record_then_start(desk, stalled, [], message_id) == ([], False)
    with read_session(desk) as s:
        row = s.get(OutboxMessage, message_id)
        assert row is not None and row.sending_at is None

    live = claim_due(desk, channel="email")
    assert [m.id for m in live.messages] == [message_id]
    nearly_out = utcnow() + timedelta(seconds=5)
    with transaction(desk) as s:  # a few seconds of its lease left
        s.execute(update(OutboxMessage).values(claimed_until=nearly_out))
    assert record_then_start(desk, live, [], message_id) == ([], True)
    with read_session(desk) as s:
        row = s.get(OutboxMessage, message_id)
        assert row is not None and row.sending_at is not None
        assert row.claimed_until == row.sending_at + LEASE
    assert claim_due(desk, channel="email", now=nearly_out + timedelta(seconds=1)).messages == []


def test_failures_back_off_then_die_and_retry_revives(desk: Engine) -> None:
    key = pull_one(desk)
    now = utcnow()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        claim = claim_due(desk, channel="sms", now=now)
        assert len(claim.messages) == 1, attempt
        message_id = claim.messages[0].id or 0
        record_result(desk, claim, DeliveryResult(message_id, False, None, "503 busy\nmore", False))
        with read_session(desk) as s:
            row = s.get(OutboxMessage, message_id)
            assert row is not None and row.last_error == "503 busy"
            if attempt < MAX_ATTEMPTS:
                assert row.status == "failed" and row.due_at > utcnow()
                now = row.due_at + timedelta(seconds=1)
            else:
                assert row.status == "dead"
    assert claim_due(desk, channel="sms", now=now + timedelta(days=1)).messages == []
    with pytest.raises(Conflict), transaction(desk) as s:
        retry(s, outbox_id=message_id + 1)  # the email is pending, not failed
    with transaction(desk) as s:
        retry(s, outbox_id=message_id)
    assert [m.id for m in claim_due(desk, channel="sms").messages] == [message_id]
    with read_session(desk) as s:
        ticket = ops.get_ticket(s, key)
        kinds = s.exec(
            select(Event.kind).where(Event.ticket_id == ticket.id).order_by(col(Event.id))
        ).all()
    assert kinds.count("message.failed") == MAX_ATTEMPTS - 1
    assert kinds.count("message.dead") == 1 and "message.retry" in kinds


def test_a_permanent_error_is_dead_at_once(desk: Engine) -> None:
    pull_one(desk)
    claim = claim_due(desk, channel="email")
    message_id = claim.messages[0].id or 0
    record_result(desk, claim, DeliveryResult(message_id, False, None, "550 no such user", True))
    with read_session(desk) as s:
        assert [m.id for m in list_outbox(s, status="dead")] == [message_id]


def test_a_worker_without_the_settings_leaves_those_messages_for_one_that_has_them(
    desk: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxdesk.config import Settings
    from cxdesk.engine.worker import DeliveryWorker

    pull_one(desk)
    # The desk app's embedded worker on a terminal set up with neither SMTP nor Twilio.
    terminal = DeliveryWorker(desk, Settings(), configured_only=True)
    assert "CXDESK_SMTP_HOST" in terminal.channels_note()
    assert "TWILIO_ACCOUNT_SID" in terminal.channels_note()
    report = terminal.run_once()
    assert report.results == {"sent": 0, "failed": 0}
    with read_session(desk) as s:
        rows = list_outbox(s)
    assert [(m.channel, m.status, m.attempts, m.last_error) for m in rows] == [
        ("sms", "pending", 0, None),
        ("email", "pending", 0, None),
    ]
    # `cxdesk worker` still tries email on localhost:25 (a local mail server) by default.
    monkeypatch.setenv("CXDESK_SMTP_HOST", "127.0.0.1")
    assert DeliveryWorker(desk, Settings(), configured_only=True).email_on
