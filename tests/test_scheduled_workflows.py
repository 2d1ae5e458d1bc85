"""Time-based workflows (``engine.scheduled``, ``engine.occurrences``): a schedule in the desk's
zone, a delay after an event "if still so", each occurrence once with two workers, catch-up,
desk-wide figures. Every time is a controlled ``now`` given to ``DeliveryWorker.run_once``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import col, func, select

from cxdesk.config import Settings
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.occurrences import _due_delayed, _due_schedules, _run_delayed, _run_scheduled
from cxdesk.engine.schedule import parse_schedule
from cxdesk.engine.scheduled import MAX_SCHEDULED, next_run
from cxdesk.engine.worker import DeliveryWorker
from cxdesk.engine.workflows import get_workflow, save_workflow, set_enabled
from cxdesk.errors import DeskError, NotFound, ValidationFailed
from cxdesk.store import directory
from cxdesk.store import tickets as ops
from cxdesk.store.db import read_session, transaction
from cxdesk.store.models import (
    Event,
    OutboxMessage,
    SlaAlert,
    Ticket,
    WorkflowOccurrence,
    simulated_clock,
    utcnow,
)
from tests.desk import build_small_desk
from tests.threads import at_once

PARIS = ZoneInfo("Europe/Paris")
WAITING = "Waiting on customer"
DIGEST_BODY = (
    "From ${desk://Since} to ${desk://Until}: created ${desk://TicketsCreated}, resolved "
    "${desk://TicketsResolved}, open ${desk://TicketsOpen}, waiting ${desk://TicketsWaiting}."
    "\n${desk://Teams}\nCSAT today: ${desk://CsatToday}\nBreaches:\n${desk://SlaBreaches}"
)
DIGEST = [{"type": "send_email", "to": "admin@example.com",
           "subject": "Digest ${desk://Until}", "body": DIGEST_BODY}]  # fmt: skip
REMINDER = [{"type": "send_email", "to": "${tck://Field/customerEmail}",
             "subject": "Still waiting on you: ${tck://Field/key}",
             "body": "We need your answer on ${tck://Field/title}."}]  # fmt: skip
STILL_WAITING = {"all": [{"field": "tck://Field/status", "op": "is", "value": WAITING}]}


@pytest.fixture(autouse=True)
def _a_month_ago() -> Iterator[None]:
    """This thread's clock (the tests' writes) stands still a month ago; the workers' passes
    take their ``now``: as in production, a run is never later than the real clock."""
    moment = datetime.now(UTC) - timedelta(days=30)
    with simulated_clock(lambda: moment):
        yield


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    with transaction(engine) as s:
        directory.set_setting(s, directory.TIME_ZONE_SETTING, "Europe/Paris")
        directory.add_status(s, actor=None, name=WAITING, category="open")
    return engine


def save(engine: Engine, name: str, **definition: Any) -> None:
    with transaction(engine) as s:
        save_workflow(s, actor=None, name=name, **definition)


def workers(engine: Engine, count: int = 2) -> list[DeliveryWorker]:
    """Workers that run workflows and leave email pending (no SMTP here): the outbox shows
    what they queued."""
    return [DeliveryWorker(engine, Settings(), configured_only=True) for _ in range(count)]


def all_at(engine: Engine, now: datetime) -> int:
    """Two workers' passes at ``now``, released together; how many occurrences they ran."""
    reports: list[int] = []
    errors = at_once(lambda w: reports.append(w.run_once(now=now).scheduled), workers(engine))
    assert not errors, errors
    return sum(reports)


def emails(engine: Engine, to: str) -> list[OutboxMessage]:
    with read_session(engine) as s:
        statement = select(OutboxMessage).where(OutboxMessage.to_addr == to)
        return list(s.exec(statement.order_by(col(OutboxMessage.id))).all())


def occurrences(engine: Engine) -> list[WorkflowOccurrence]:
    with read_session(engine) as s:
        statement = select(WorkflowOccurrence).order_by(col(WorkflowOccurrence.id))
        return list(s.exec(statement).all())


def next_18h() -> datetime:
    at = parse_schedule("daily 18:00").next_after(utcnow(), PARIS)
    assert at is not None
    return at


def open_ticket(engine: Engine, title: str, team: str = "360") -> str:
    with unit_of_work(engine) as s:
        draft = ops.TicketDraft(title=title, team=team, customer_email="zoe@example.com")
        return ops.create_ticket(s, actor=None, draft=draft).key or ""


def set_status(engine: Engine, key: str, status: str) -> None:
    with unit_of_work(engine) as s:
        ticket = ops.get_ticket(s, key)
        ops.change_status(s, None, ticket, directory.get_status(s, status))


# -- a schedule ------------------------------------------------------------------------------


def test_the_digest_runs_once_at_its_time_with_two_workers(desk: Engine) -> None:
    save(desk, "Digest", schedule="daily 18:00", tasks=DIGEST)
    at = next_18h()
    assert all_at(desk, at - timedelta(seconds=1)) == 0  # not yet
    assert all_at(desk, at) == 1  # both workers at 18:00: one ran it
    assert all_at(desk, at + timedelta(minutes=5)) == 0  # and nobody again
    [digest] = emails(desk, "admin@example.com")
    assert digest.subject == f"Digest {at.astimezone(PARIS):%Y-%m-%d} 18:00"
    [run] = occurrences(desk)
    assert (run.due_at, run.matched) == (at, True)
    assert all_at(desk, at + timedelta(days=1)) == 1  # the next day's
    assert len(emails(desk, "admin@example.com")) == 2


def test_two_workers_that_both_found_the_digest_due_run_it_once(desk: Engine) -> None:
    """The race the passes above may not hit: both read it due before either ran it."""
    save(desk, "Digest", schedule="daily 18:00", tasks=DIGEST)
    at = next_18h()
    found = [_due_schedules(desk, at), _due_schedules(desk, at)]
    assert found[0] == found[1] and len(found[0]) == 1
    ran: list[int] = []
    assert not at_once(lambda due: ran.append(_run_scheduled(desk, *due[0], at)), found)
    assert sorted(ran) == [0, 1]
    assert len(emails(desk, "admin@example.com")) == 1


def test_two_workers_that_both_found_a_reminder_due_run_it_once(desk: Engine) -> None:
    delayed(desk)
    set_status(desk, open_ticket(desk, "Export fails"), WAITING)
    [pending] = occurrences(desk)
    found = [_due_delayed(desk, pending.due_at), _due_delayed(desk, pending.due_at)]
    assert found == [[pending.id], [pending.id]]
    ran: list[int] = []
    assert not at_once(lambda due: ran.append(_run_delayed(desk, due[0], pending.due_at)), found)
    assert sorted(ran) == [0, 1]
    assert len(emails(desk, "zoe@example.com")) == 1


def test_a_worker_back_after_three_days_runs_the_latest_missed_run_once(desk: Engine) -> None:
    save(desk, "Digest", schedule="daily 18:00", tasks=DIGEST)
    at = next_18h()
    back = at + timedelta(days=3, hours=2)  # missed 18:00 on four days
    assert all_at(desk, back) == 1
    assert all_at(desk, back + timedelta(minutes=1)) == 0
    [run] = occurrences(desk)
    assert run.due_at == at + timedelta(days=3)  # the latest only
    [digest] = emails(desk, "admin@example.com")
    since = f"{(at + timedelta(days=2)).astimezone(PARIS):%Y-%m-%d %H:%M}"
    assert digest.body.startswith(f"From {since} to ")  # its own day, not four
    assert digest.valid_until == run.due_at + timedelta(hours=24)  # counted from 18:00


def test_a_new_schedule_does_not_run_a_time_before_it_was_set(desk: Engine) -> None:
    save(desk, "Every minute", schedule="* * * * *", tasks=DIGEST)
    now = utcnow()
    assert all_at(desk, now) == 0  # this minute began before the schedule was saved
    with read_session(desk) as s:
        upcoming = next_run(s, get_workflow(s, "Every minute"), now)
    assert upcoming is not None and timedelta(0) < upcoming - now <= timedelta(minutes=1)
    assert all_at(desk, upcoming) == 1


def test_a_schedule_turned_back_on_does_not_catch_up_the_days_it_was_off(desk: Engine) -> None:
    save(desk, "Digest", schedule="daily 18:00", tasks=DIGEST)
    at = next_18h()
    assert all_at(desk, at) == 1
    with transaction(desk) as s:
        set_enabled(s, actor=None, name="Digest", enabled=False)
    back = at + timedelta(days=3, hours=1)
    with simulated_clock(lambda: back), transaction(desk) as s:
        set_enabled(s, actor=None, name="Digest", enabled=True)
    assert all_at(desk, back) == 0  # 18:00 today was while it was off
    assert all_at(desk, at + timedelta(days=4)) == 1


def test_the_digest_pipes_the_desk_since_its_last_run(desk: Engine) -> None:
    save(desk, "Digest", schedule="daily 18:00", tasks=DIGEST)
    keys = [open_ticket(desk, f"Q{n}") for n in range(3)] + [open_ticket(desk, "S", "Stats iQ")]
    set_status(desk, keys[0], "resolved")
    at = next_18h()
    assert all_at(desk, at) == 1
    [digest] = emails(desk, "admin@example.com")
    assert "created 4, resolved 1, open 3, waiting 3." in digest.body
    assert "360: 3 created, 1 resolved, 2 open\nSolo: 0 created, 0 resolved, 0 open\n" \
           "Stats iQ: 1 created, 0 resolved, 1 open" in digest.body  # fmt: skip
    assert "CSAT today: no answers" in digest.body
    assert all_at(desk, at + timedelta(days=1)) == 1  # the next day: nothing new since
    assert "created 0, resolved 0, open 3" in emails(desk, "admin@example.com")[1].body


def test_a_schedules_conditions_read_the_desks_figures(desk: Engine) -> None:
    quiet = {"all": [{"field": "desk://TicketsCreated", "op": ">", "value": "0"}]}
    save(desk, "Digest if busy", schedule="daily 18:00", tasks=DIGEST, conditions=quiet)
    at = next_18h()
    assert all_at(desk, at) == 1  # it ran (once) and sent nothing: nothing was created
    assert emails(desk, "admin@example.com") == []
    assert [o.matched for o in occurrences(desk)] == [False]


def test_a_run_that_fails_on_the_desks_data_is_logged_once_and_the_pass_goes_on(
    desk: Engine,
) -> None:
    ghost = [{"type": "create_ticket", "team": "Ghost", "title": "Weekly review"}]
    save(desk, "Review", schedule="daily 18:00", tasks=ghost)
    save(desk, "Digest", schedule="daily 18:00", tasks=DIGEST)
    at = next_18h()
    assert all_at(desk, at) == 2  # no exception: the digest still ran
    assert all_at(desk, at + timedelta(minutes=1)) == 0  # the failed one is not retried
    assert len(emails(desk, "admin@example.com")) == 1
    with read_session(desk) as s:
        [failed] = s.exec(select(Event).where(col(Event.detail).contains("failed"))).all()
        assert (failed.kind, failed.to_value) == ("workflow.scheduled", "Review")
        assert "No team named 'Ghost'" in (failed.detail or "")
        assert s.exec(select(func.count()).select_from(Ticket)).one() == 0


# -- a delay after an event ------------------------------------------------------------------


def delayed(desk: Engine) -> None:
    save(desk, "Remind", event="ticket.status_changed", delay_minutes=24 * 60,
         conditions=STILL_WAITING, tasks=REMINDER)  # fmt: skip


def test_a_delayed_workflow_runs_once_a_day_later_if_the_ticket_still_waits(desk: Engine) -> None:
    delayed(desk)
    key = open_ticket(desk, "Export fails")
    set_status(desk, key, WAITING)
    [pending] = occurrences(desk)
    assert pending.ran_at is None
    assert all_at(desk, pending.due_at - timedelta(seconds=1)) == 0
    assert emails(desk, "zoe@example.com") == []
    assert all_at(desk, pending.due_at) == 1  # two workers: one reminder
    assert all_at(desk, pending.due_at + timedelta(hours=1)) == 0
    [reminder] = emails(desk, "zoe@example.com")
    assert reminder.subject == f"Still waiting on you: {key}"
    assert reminder.valid_until == pending.due_at + timedelta(hours=24)


def test_a_delayed_workflow_does_nothing_when_the_ticket_moved_on(desk: Engine) -> None:
    delayed(desk)
    key = open_ticket(desk, "Export fails")
    set_status(desk, key, WAITING)
    set_status(desk, key, "open")  # the customer answered
    [pending] = occurrences(desk)
    assert all_at(desk, pending.due_at) == 1
    assert emails(desk, "zoe@example.com") == []
    assert [o.matched for o in occurrences(desk)] == [False]


def test_the_last_change_to_waiting_counts(desk: Engine) -> None:
    delayed(desk)
    key = open_ticket(desk, "Export fails")
    set_status(desk, key, WAITING)
    set_status(desk, key, "open")
    later = utcnow() + timedelta(hours=1)
    with simulated_clock(lambda: later):  # waiting again: 24 hours from then, not from before
        set_status(desk, key, WAITING)
    first, second = occurrences(desk)
    assert second.due_at == first.due_at + timedelta(hours=1)
    assert all_at(desk, first.due_at) == 1
    assert emails(desk, "zoe@example.com") == []  # superseded by the later change
    assert all_at(desk, second.due_at) == 1
    assert len(emails(desk, "zoe@example.com")) == 1


def test_a_disabled_delayed_workflow_does_not_run_its_pending_occurrences(desk: Engine) -> None:
    delayed(desk)
    key = open_ticket(desk, "Export fails")
    set_status(desk, key, WAITING)
    with transaction(desk) as s:
        set_enabled(s, actor=None, name="Remind", enabled=False)
    [pending] = occurrences(desk)
    assert all_at(desk, pending.due_at) == 1
    assert emails(desk, "zoe@example.com") == []


# -- saving ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        ({"schedule": "daily 6pm", "tasks": DIGEST}, "schedule: daily takes a time as HH:MM"),
        ({"schedule": "0," * 60 + "5 * * * *", "tasks": DIGEST}, "at most 100 characters"),
        ({"schedule": "daily 18:00", "tasks": REMINDER}, "has no ticket or answers"),
        ({"schedule": "daily 18:00", "tasks": [{"type": "comment", "body": "x"}]},
         "task 1: comment needs a ticket"),
        ({"schedule": "daily 18:00", "event": "ticket.created", "tasks": DIGEST},
         "an event or a schedule, not both"),
        ({"schedule": "daily 18:00", "delay_minutes": 5, "tasks": DIGEST},
         "delay_minutes is for event workflows"),
        ({"event": "ticket.created", "tasks": DIGEST}, "for scheduled workflows only"),
        ({"event": "ticket.created", "delay_minutes": 0, "tasks": REMINDER},
         "delay_minutes must be a whole number of minutes from 1"),
        ({"schedule": "daily 18:00", "tasks": [{"type": "send_email", "to": "a@example.com",
          "subject": "${desk://Nope}", "body": "x"}]}, "unknown desk figure"),
    ],
)  # fmt: skip
def test_a_bad_time_based_workflow_is_refused_and_nothing_saved(
    desk: Engine, definition: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationFailed, match=problem), transaction(desk) as s:
        save_workflow(s, actor=None, name="Bad", **definition)
    with read_session(desk) as s, pytest.raises(NotFound):
        get_workflow(s, "Bad")


def test_at_most_fifty_scheduled_workflows_are_enabled(desk: Engine) -> None:
    with transaction(desk) as s:
        for n in range(MAX_SCHEDULED):
            save_workflow(s, actor=None, name=f"D{n}", schedule="daily 18:00", tasks=DIGEST)
        save_workflow(s, actor=None, name="Off", schedule="daily 18:00", tasks=DIGEST,
                      enabled=False)  # fmt: skip
        save_workflow(s, actor=None, name="D0", schedule="daily 19:00", tasks=DIGEST)  # an edit
    refused = pytest.raises(ValidationFailed, match="already has 50 enabled scheduled")
    with refused, transaction(desk) as s:
        set_enabled(s, actor=None, name="Off", enabled=True)
    with pytest.raises(ValidationFailed, match="disable one first"), transaction(desk) as s:
        save_workflow(s, actor=None, name="D50", schedule="daily 18:00", tasks=DIGEST)


def test_the_desk_zone_is_its_setting_else_utc(desk: Engine) -> None:
    for stored, zone in (("Europe/Paris", "Europe/Paris"), ("", "UTC"), ("Mars/Olympus", "UTC")):
        with transaction(desk) as s:
            directory.set_setting(s, directory.TIME_ZONE_SETTING, stored)
            assert str(directory.desk_zone(s)) == zone


def test_the_digest_lists_the_sla_breaches_since_its_last_run(desk: Engine) -> None:
    save(desk, "Digest", schedule="daily 18:00", tasks=DIGEST)
    at = next_18h()
    late, earlier = open_ticket(desk, "Late one"), open_ticket(desk, "Old one")
    with transaction(desk) as s:
        for key, created in ((late, at - timedelta(hours=1)), (earlier, at - timedelta(days=2))):
            ticket_id = ops.get_ticket(s, key).id
            assert ticket_id is not None
            due = created - timedelta(minutes=5)
            for kind in ("warning", "breached"):
                s.add(SlaAlert(ticket_id=ticket_id, target="resolution", kind=kind, since=due,
                               due_at=due, created_at=created))  # fmt: skip
    assert all_at(desk, at) == 1
    [digest] = emails(desk, "admin@example.com")
    due_text = f"{(at - timedelta(hours=1, minutes=5)).astimezone(PARIS):%Y-%m-%d %H:%M}"
    assert f"Breaches:\n{late} Late one: resolution due {due_text}" in digest.body
    assert earlier not in digest.body  # breached before the last run


def test_a_busy_database_fails_the_pass_and_the_digest_runs_on_the_next(
    desk: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQLite lock held past the busy timeout (or the server gone) is trouble that passes:
    the worker's pass fails (said once, tried again), the run is not given up as failed."""
    import sqlite3

    from cxdesk.engine import occurrences
    from cxdesk.store.db import driver_error

    save(desk, "Digest", schedule="daily 18:00", tasks=DIGEST)
    real, calls = occurrences._run_tasks, []

    def busy_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            try:
                raise sqlite3.OperationalError("database is locked")
            except sqlite3.OperationalError as cause:
                raise driver_error(cause) from cause
        return real(*args, **kwargs)

    monkeypatch.setattr(occurrences, "_run_tasks", busy_once)
    at = next_18h()
    with pytest.raises(DeskError, match="busy"):
        occurrences.run_due_workflows(desk, now=at)
    assert emails(desk, "admin@example.com") == []
    assert occurrences.run_due_workflows(desk, now=at + timedelta(minutes=1)) == 1
    assert len(emails(desk, "admin@example.com")) == 1
