"""The worker's SLA alerts (``engine.sla_watch``), on SQLite and PostgreSQL, with a controlled
clock (``run_once(now=...)``): ``sla.warning`` then ``sla.breached`` once per ticket and target,
their workflows (an email to the lead, ``set_priority``), nothing for a paused ticket or a target
done (even late), two workers at the same instant raising each alert once, and failing
alerts held back (1, 2, 4... minutes) without starving the others.

The tickets' SLA columns are set directly (``tests.sla_helpers``), not by a policy."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import DisconnectionError
from sqlmodel import col, select

from cxdesk.config import load_settings
from cxdesk.engine import sla_watch
from cxdesk.engine.sla_watch import raise_sla_alerts
from cxdesk.engine.tasks import priority_after
from cxdesk.engine.worker import DeliveryWorker
from cxdesk.engine.workflows import save_workflow
from cxdesk.errors import ValidationFailed
from cxdesk.store.db import make_engine, read_session, transaction
from cxdesk.store.directory import add_team
from cxdesk.store.models import Event, OutboxMessage, SlaAlert, Ticket, utcnow
from cxdesk.store.tickets import ticket_comments
from tests.cli_helpers import Cli
from tests.desk import build_small_desk
from tests.sla_helpers import MINUTE, give_sla
from tests.test_views import make_ticket
from tests.threads import at_once

LEAD = "lead@example.com"
SECOND = timedelta(seconds=1)


def workflows(engine: Engine) -> None:
    """On a first-response breach, the lead is told and the priority goes up one step; on
    any warning, a comment."""
    with transaction(engine) as s:
        save_workflow(
            s, actor=None, name="First response breached: tell the lead", event="sla.breached",
            conditions={"all": [{"field": "e://Field/field", "op": "is",
                                 "value": "first_response"}]},
            tasks=[{"type": "send_email", "to": LEAD,
                    "subject": "SLA breached: ${tck://Field/key}",
                    "body": "${tck://Field/title}: ${e://Field/detail}"},
                   {"type": "set_priority", "priority": "raise"}],
        )  # fmt: skip
        save_workflow(s, actor=None, name="Warned", event="sla.warning",
                      tasks=[{"type": "comment", "body": "SLA: ${e://Field/detail}"}])  # fmt: skip


def worker(engine: Engine) -> DeliveryWorker:
    """A worker that leaves email alone (no SMTP host here): its rows stay queued."""
    return DeliveryWorker(engine, load_settings(), configured_only=True)


def start() -> datetime:
    return utcnow().replace(second=0, microsecond=0) - timedelta(hours=1)


def alerts(engine: Engine) -> list[tuple[str, str, str]]:
    with read_session(engine) as session:
        rows = session.exec(
            select(Ticket.key, SlaAlert.target, SlaAlert.kind)
            .join(Ticket, col(Ticket.id) == col(SlaAlert.ticket_id))
            .order_by(col(SlaAlert.id))
        ).all()
    return [(str(key), target, kind) for key, target, kind in rows]


def sla_events(engine: Engine) -> list[dict[str, Any]]:
    with read_session(engine) as session:
        rows = session.exec(
            select(Event).where(col(Event.kind).in_(("sla.warning", "sla.breached")))
            .order_by(col(Event.id))
        ).all()  # fmt: skip
        return [
            {"kind": e.kind, "field": e.field_name, "to": e.to_value, "detail": e.detail}
            for e in rows
        ]


def emails(engine: Engine) -> list[tuple[str, str | None]]:
    with read_session(engine) as session:
        rows = session.exec(select(OutboxMessage.to_addr, OutboxMessage.subject)).all()
    return [(to, subject) for to, subject in rows]


def ticket_of(engine: Engine, key: str) -> Ticket:
    with read_session(engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
        session.expunge(ticket)
        return ticket


def test_warning_then_breach_each_once_and_their_workflows_act(engine: Engine) -> None:
    build_small_desk(engine)
    workflows(engine)
    t0 = start()
    key = make_ticket(engine, "Export fails", "360", customer_name="Ada")
    give_sla(engine, key, t0)  # first response: warn at 7.5, due at 10; resolution 33.75, 45
    run = worker(engine).run_once

    assert run(now=t0 + 7 * MINUTE).sla_alerts == 0
    warned = run(now=t0 + 8 * MINUTE)
    assert warned.sla_alerts == 1 and "raised 1 SLA alert(s)" in warned.line()
    assert run(now=t0 + 9 * MINUTE).sla_alerts == 0  # once
    assert alerts(engine) == [(key, "first_response", "warning")]
    assert emails(engine) == [] and ticket_of(engine, key).priority == "medium"

    assert run(now=t0 + 11 * MINUTE).sla_alerts == 1
    assert run(now=t0 + 12 * MINUTE).sla_alerts == 0
    due = t0 + 10 * MINUTE
    assert sla_events(engine) == [
        {"kind": "sla.warning", "field": "first_response", "to": due.isoformat(),
         "detail": f"first response due {due:%Y-%m-%d %H:%M} UTC"},
        {"kind": "sla.breached", "field": "first_response", "to": due.isoformat(),
         "detail": f"first response due {due:%Y-%m-%d %H:%M} UTC"},
    ]  # fmt: skip
    assert emails(engine) == [(LEAD, f"SLA breached: {key}")]
    assert ticket_of(engine, key).priority == "high"  # raised one step

    # The resolution passes its warning and its due time between two passes: only the breach
    # (no late warning), and its workflow's condition (first response) does not match.
    assert run(now=t0 + 50 * MINUTE).sla_alerts == 1
    assert alerts(engine)[-1] == (key, "resolution", "breached")
    assert emails(engine) == [(LEAD, f"SLA breached: {key}")]
    assert run(now=t0 + 600 * MINUTE).sla_alerts == 0
    with read_session(engine) as session:
        log = session.exec(
            select(Event.field_name, Event.from_value, Event.to_value)
            .where(Event.kind == "ticket.updated", col(Event.actor_id).is_(None))
        ).all()  # fmt: skip
        linked = session.exec(select(SlaAlert.event_id)).all()
    assert log == [("priority", "medium", "high")]
    assert None not in linked and len(set(linked)) == 3


def test_a_new_next_response_clock_raises_again(engine: Engine) -> None:
    build_small_desk(engine)
    t0 = start()
    key = make_ticket(engine, "Login", "360", customer_name="Ada")
    give_sla(engine, key, t0, first_response=None, resolution=None,
             next_response_since=t0, next_response_due_at=t0 + 5 * MINUTE)  # fmt: skip
    run = worker(engine).run_once
    assert run(now=t0 + 6 * MINUTE).sla_alerts == 1
    assert run(now=t0 + 7 * MINUTE).sla_alerts == 0
    # The expert answered; the customer wrote again: a new clock, a new alert.
    give_sla(engine, key, t0, first_response=None, resolution=None,
             next_response_since=t0 + 20 * MINUTE,
             next_response_due_at=t0 + 25 * MINUTE)  # fmt: skip
    assert run(now=t0 + 24 * MINUTE).sla_alerts == 0
    assert run(now=t0 + 26 * MINUTE).sla_alerts == 1
    assert alerts(engine) == [(key, "next_response", "breached")] * 2


def test_paused_resolved_and_done_targets_raise_nothing(engine: Engine) -> None:
    build_small_desk(engine)
    workflows(engine)
    t0 = start()
    paused = make_ticket(engine, "Waiting on the customer", "360", customer_name="Ada")
    give_sla(engine, paused, t0, sla_paused_at=t0 + 5 * MINUTE)
    late = make_ticket(engine, "Answered late", "360", customer_name="Bo")
    give_sla(engine, late, t0, resolution=None, first_responded_at=t0 + 12 * MINUTE)
    resolved = make_ticket(engine, "Resolved", "360", customer_name="Cy",
                           status="resolved")  # fmt: skip
    give_sla(engine, resolved, t0)
    run = worker(engine).run_once
    assert run(now=t0 + 20 * MINUTE).sla_alerts == 0
    assert run(now=t0 + 600 * MINUTE).sla_alerts == 0
    assert alerts(engine) == [] and sla_events(engine) == [] and emails(engine) == []


def test_two_workers_at_the_same_instant_raise_each_breach_once(
    engine: Engine, db_url: str
) -> None:
    """Two workers, each with its own engine (as on two machines), run a pass at the same
    controlled time over five breached tickets: five alerts, five events, five emails."""
    build_small_desk(engine)
    workflows(engine)
    t0 = start()
    keys = [make_ticket(engine, f"Ticket {n}", "360", customer_name="Ada") for n in range(5)]
    for key in keys:
        give_sla(engine, key, t0, resolution=None)
    workers = [worker(make_engine(db_url)) for _ in range(2)]
    counts: list[int] = []
    errors = at_once(lambda w: counts.append(w.run_once(now=t0 + 11 * MINUTE).sla_alerts), workers)
    assert errors == []
    assert sum(counts) == 5, counts
    assert sorted(alerts(engine)) == sorted((k, "first_response", "breached") for k in keys)
    assert len(sla_events(engine)) == 5
    assert sorted(emails(engine)) == sorted((LEAD, f"SLA breached: {k}") for k in keys)
    assert {ticket_of(engine, k).priority for k in keys} == {"high"}
    for each in workers:
        each.engine.dispose()


def test_set_priority_is_checked_when_saved_and_raises_one_step(engine: Engine) -> None:
    build_small_desk(engine)
    with transaction(engine) as s, pytest.raises(ValidationFailed) as refused:
        save_workflow(s, actor=None, name="Bad", event="sla.warning",
                      tasks=[{"type": "set_priority", "priority": "urgent"},
                             {"type": "set_priority"}])  # fmt: skip
    problem = str(refused.value)
    assert "task 1: priority must be one of low, medium, high, critical, raise" in problem
    assert "task 2: set_priority needs priority" in problem
    steps = [priority_after(p, "raise") for p in ("low", "medium", "high", "critical")]
    assert steps == ["medium", "high", "critical", "critical"]
    assert priority_after("critical", "low") == "low"


def test_on_the_demo_desk_two_workers_run_the_seeds_sla_workflows_once(
    cli: Cli, engine: Engine, db_url: str
) -> None:
    """The demo seed's workflows: a first-response warning raises the priority one step (not
    two, with two workers), a breach notes it on the ticket once."""
    assert cli("demo").exit_code == 0
    with read_session(engine) as session:
        ticket = session.exec(
            select(Ticket).where(Ticket.status == "new", Ticket.priority == "medium")
        ).first()
        assert ticket is not None and ticket.key is not None
        key = ticket.key
    t0 = start()
    give_sla(engine, key, t0, policy="Event desk")  # the demo's: raising the priority keeps it
    workers = [worker(make_engine(db_url)) for _ in range(2)]
    for minutes in (8, 11):
        at = t0 + minutes * MINUTE
        errors = at_once(lambda w, at=at: w.run_once(now=at), workers)
        assert errors == []
    for each in workers:
        each.engine.dispose()
    assert ticket_of(engine, key).priority == "high"
    with read_session(engine) as session:
        notes = [c.body for c in ticket_comments(session, ticket_of(engine, key))]
    due = f"first response due {t0 + 10 * MINUTE:%Y-%m-%d %H:%M} UTC"
    assert notes.count(f"Priority raised: {due}.") == 1
    assert notes.count(f"SLA breached: {due}.") == 1


def broken_breaches(engine: Engine, t0: datetime, count: int) -> list[str]:
    """``count`` tickets whose first-response breach (due at 10 minutes) runs a workflow that
    fails (a follow-up ticket for the team "Broken", which does not exist); their keys."""
    with transaction(engine) as s:
        save_workflow(
            s, actor=None, name="Breached: follow-up ticket", event="sla.breached",
            conditions={"all": [{"field": "tck://Field/title", "op": "is", "value": "Broken"}]},
            tasks=[{"type": "create_ticket", "team": "${tck://Field/title}",
                    "title": "Follow up ${tck://Field/key}"}],
        )  # fmt: skip
    keys = [make_ticket(engine, "Broken", "360", customer_name="Ada") for _ in range(count)]
    for key in keys:
        give_sla(engine, key, t0, resolution=None)
    return keys


def test_a_failing_workflow_holds_back_its_own_alert_only(engine: Engine) -> None:
    """A breach whose workflow fails (it names a team that does not exist) is undone whole, no
    row, no event; the other ticket's breach is raised; once the team exists, it is raised."""
    build_small_desk(engine)
    t0 = start()
    [broken] = broken_breaches(engine, t0, 1)
    fine = make_ticket(engine, "Fine", "360", customer_name="Bo")
    give_sla(engine, fine, t0, resolution=None)
    run = worker(engine).run_once
    assert run(now=t0 + 11 * MINUTE).sla_alerts == 1
    assert alerts(engine) == [(fine, "first_response", "breached")]
    assert len(sla_events(engine)) == 1
    with transaction(engine) as s:
        add_team(s, actor=None, name="Broken")
    assert run(now=t0 + 12 * MINUTE).sla_alerts == 1
    assert alerts(engine)[-1] == (broken, "first_response", "breached")


def not_raised_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "not raised yet" in r.getMessage()]


def test_failing_alerts_do_not_starve_the_others(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Three breaches that keep failing fill a pass of three: they are held back, and a fine
    ticket due a minute later is raised in the next pass; each failure is logged once, not
    once per pass (a pass a second)."""
    build_small_desk(engine)
    t0 = start()
    broken = broken_breaches(engine, t0, 3)
    fine = make_ticket(engine, "Fine", "360", customer_name="Bo")
    give_sla(engine, fine, t0 + MINUTE, resolution=None)  # due at 11 minutes
    at = t0 + 11 * MINUTE
    counts = [raise_sla_alerts(engine, now=at + n * SECOND, limit=3) for n in range(8)]
    assert counts == [0, 1, 0, 0, 0, 0, 0, 0]
    assert alerts(engine) == [(fine, "first_response", "breached")]
    lines = not_raised_lines(caplog)
    assert len(lines) == 3, lines
    assert all("tried again in 1 min" in line for line in lines)
    assert {int(line.split("ticket ")[1].split()[0]) for line in lines} == {
        ticket_of(engine, key).id for key in broken
    }


def test_a_failing_alert_waits_longer_each_time_then_is_raised(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing breach is tried again after 1, then 2, then 4 minutes (logged once each
    time), and raised once its team exists and its wait is over."""
    build_small_desk(engine)
    t0 = start()
    [broken] = broken_breaches(engine, t0, 1)

    def run(minutes: float) -> int:
        return worker(engine).run_once(now=t0 + minutes * MINUTE).sla_alerts

    # a new worker each pass, on the same engine: what it holds back is the engine's
    assert [run(m) for m in (11, 11.5, 12, 13, 13.9, 14, 15, 17.9)] == [0] * 8
    lines = not_raised_lines(caplog)
    assert [line.split("(")[1].split(")")[0] for line in lines] == [
        "tried again in 1 min", "tried again in 2 min", "tried again in 4 min",
    ]  # fmt: skip
    with transaction(engine) as s:
        add_team(s, actor=None, name="Broken")
    assert run(17.99) == 0  # still waiting
    assert run(18) == 1
    assert alerts(engine) == [(broken, "first_response", "breached")]
    assert run(19) == 0 and len(not_raised_lines(caplog)) == 3


def test_an_unreachable_database_fails_the_pass_and_holds_nothing_back(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database lost mid-alert fails the whole pass (the worker says it once and retries
    the pass); the alert is not held back as a failing one: the next pass raises it."""
    build_small_desk(engine)
    t0 = start()
    key = make_ticket(engine, "Lost", "360", customer_name="Ada")
    give_sla(engine, key, t0, resolution=None)

    def lost(*_args: object, **_kwargs: object) -> int:
        raise DisconnectionError("connection lost")

    monkeypatch.setattr(sla_watch, "record_event", lost)
    with pytest.raises(DisconnectionError):
        raise_sla_alerts(engine, now=t0 + 11 * MINUTE)
    monkeypatch.undo()
    assert raise_sla_alerts(engine, now=t0 + 11 * MINUTE) == 1
    assert alerts(engine) == [(key, "first_response", "breached")]
