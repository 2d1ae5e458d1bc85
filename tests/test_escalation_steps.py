"""An escalated ticket's timeline and estimate (store and CLI), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import Conflict, PermissionDenied, ValidationFailed
from cxdesk.store import tickets as ops
from cxdesk.store.db import read_session
from cxdesk.store.directory import get_user
from cxdesk.store.escalation_steps import (
    ENGINEERING,
    ESTIMATE_EVENT,
    STEP_EVENT,
    STEPS,
    VERIFY,
    EscalationTimeline,
    escalation_timeline,
    parse_estimate,
    set_escalation_step,
)
from cxdesk.store.models import Comment, Event, Ticket
from tests.cli_helpers import Cli, assert_one_error_line, dump_tables
from tests.desk import build_small_desk

TABLES = ["ticket", "comment", "event"]


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    return engine


def new_ticket(engine: Engine, requester: str = "omar") -> str:
    with unit_of_work(engine) as s:
        key = ops.create_manual_ticket(
            s, actor=get_user(s, requester), customer_email="c@example.com", team="360",
            comment="Exports fail",
        ).key  # fmt: skip
    assert key is not None
    return key


def escalated_ticket(engine: Engine) -> str:
    key = new_ticket(engine)
    update(engine, key, "escalated", "Needs engineering")
    return key


def update(engine: Engine, key: str, status: str, comment: str) -> None:
    with unit_of_work(engine) as s:
        ops.update_ticket(
            s, actor=get_user(s, "maya"), key=key, comment=comment, changes={"status": status}
        )


def set_step(
    engine: Engine,
    key: str,
    step: str | None,
    estimate: date | None = None,
    *,
    who: str = "maya",
    comment: str = "Engineering took it",
) -> None:
    with unit_of_work(engine) as s:
        set_escalation_step(
            s, actor=get_user(s, who), key=key, step=step, estimate=estimate, comment=comment
        )


def timeline(engine: Engine, key: str) -> EscalationTimeline | None:
    with read_session(engine) as s:
        return escalation_timeline(s, ops.get_ticket(s, key))


def events(engine: Engine, key: str, kind: str) -> list[Event]:
    with read_session(engine) as s:
        ticket = ops.get_ticket(s, key)
        return list(
            s.exec(
                select(Event)
                .where(Event.ticket_id == ticket.id, Event.kind == kind)
                .order_by(col(Event.id))
            ).all()
        )


def stored(engine: Engine, key: str) -> Ticket:
    with read_session(engine) as s:
        return ops.get_ticket(s, key)


def test_a_ticket_never_escalated_has_no_timeline(desk: Engine) -> None:
    key = new_ticket(desk)
    assert timeline(desk, key) is None


def test_escalating_reaches_under_evaluation_with_its_dates(desk: Engine) -> None:
    key = escalated_ticket(desk)
    ticket = stored(desk, key)
    found = timeline(desk, key)

    assert found is not None
    assert [s.name for s in found.steps] == list(STEPS)
    assert [s.at for s in found.steps] == [ticket.created_at, ticket.escalated_at, None, None, None]
    assert found.current == "under evaluation"
    assert [s.current for s in found.steps] == [False, True, False, False, False]
    assert found.estimate is None


def test_steps_forward_back_and_resolved(desk: Engine) -> None:
    key = escalated_ticket(desk)
    estimate = date.today() + timedelta(days=7)
    set_step(desk, key, ENGINEERING, estimate)

    [step_event] = events(desk, key, STEP_EVENT)
    assert (step_event.from_value, step_event.to_value) == ("under evaluation", ENGINEERING)
    [estimate_event] = events(desk, key, ESTIMATE_EVENT)
    assert (estimate_event.from_value, estimate_event.to_value) == (None, estimate.isoformat())
    assert stored(desk, key).estimated_resolution == estimate
    with read_session(desk) as s:
        bodies = s.exec(select(Comment.body).order_by(col(Comment.id))).all()
    assert bodies[-1] == "Engineering took it"
    found = timeline(desk, key)
    assert found is not None and found.current == ENGINEERING
    assert found.steps[2].at == step_event.created_at and found.estimate == estimate

    set_step(desk, key, VERIFY, comment="Fix deployed")
    found = timeline(desk, key)
    assert found is not None and found.current == VERIFY and found.steps[3].at is not None
    set_step(desk, key, ENGINEERING, comment="Still failing")  # verification failed
    found = timeline(desk, key)
    assert found is not None and found.current == ENGINEERING
    assert found.steps[3].at is None  # left behind
    assert found.estimate == estimate  # kept when only the step changes

    update(desk, key, "resolved", "Fixed")
    found = timeline(desk, key)
    assert found is not None and found.current == "resolved"
    assert found.steps[4].at == stored(desk, key).resolved_at
    assert found.steps[2].at is not None and found.steps[3].at is None


def test_estimate_alone_and_a_new_escalation_starts_afresh(desk: Engine) -> None:
    key = escalated_ticket(desk)
    first = date.today() + timedelta(days=3)
    set_step(desk, key, None, first, comment="Engineering says three days")
    found = timeline(desk, key)
    assert found is not None and found.current == "under evaluation" and found.estimate == first
    set_step(desk, key, VERIFY, comment="Deployed")

    update(desk, key, "resolved", "Fixed")
    update(desk, key, "escalated", "Broke again")
    found = timeline(desk, key)
    assert found is not None and found.current == "under evaluation"
    assert [s.at is not None for s in found.steps] == [True, True, False, False, False]


def test_refusals_change_nothing(desk: Engine) -> None:
    plain = new_ticket(desk)
    key = escalated_ticket(desk)
    before = dump_tables(desk, TABLES)
    yesterday = date.today() - timedelta(days=1)

    with pytest.raises(Conflict, match="not escalated"):
        set_step(desk, plain, ENGINEERING)
    with pytest.raises(ValidationFailed, match="step: must be one of"):
        set_step(desk, key, "resolved")
    with pytest.raises(ValidationFailed, match="comment"):
        set_step(desk, key, ENGINEERING, comment=" ")
    with pytest.raises(ValidationFailed, match="step or an estimate"):
        set_step(desk, key, None)
    with pytest.raises(ValidationFailed, match="before the escalation"):
        set_step(desk, key, ENGINEERING, yesterday)
    with pytest.raises(PermissionDenied, match="not on the team"):
        set_step(desk, key, ENGINEERING, who="kenji")
    with pytest.raises(PermissionDenied, match="volunteer"):
        set_step(desk, key, ENGINEERING, who="vera")
    assert dump_tables(desk, TABLES) == before

    set_step(desk, key, ENGINEERING, who="admin")  # an admin may, on any team
    with pytest.raises(Conflict, match="already at engineering in progress"):
        set_step(desk, key, ENGINEERING)


def test_parse_estimate() -> None:
    assert parse_estimate(" 2026-12-01 ") == date(2026, 12, 1)
    assert parse_estimate("") is None
    with pytest.raises(ValidationFailed, match="not a date"):
        parse_estimate("next week")


# -- the CLI -----------------------------------------------------------------------------------


def test_cli_escalation_and_show_json(desk: Engine, cli: Cli) -> None:
    plain = new_ticket(desk)
    key = escalated_ticket(desk)
    estimate = (date.today() + timedelta(days=5)).isoformat()
    before = dump_tables(desk, TABLES)

    assert_one_error_line(
        cli("ticket", "escalation", key, "--as", "maya", "--step", "done", "--comment", "x"),
        "must be one of engineering in progress, verify resolution",
    )
    assert_one_error_line(
        cli("ticket", "escalation", key, "--as", "maya", "--step", ENGINEERING,
            "--estimate", "31/12/2026", "--comment", "x"),
        "not a date (YYYY-MM-DD)",
    )  # fmt: skip
    assert_one_error_line(
        cli("ticket", "escalation", plain, "--as", "maya", "--step", ENGINEERING,
            "--comment", "x"),
        "not escalated",
    )  # fmt: skip
    assert dump_tables(desk, TABLES) == before

    done = cli("ticket", "escalation", key, "--as", "maya", "--step", ENGINEERING,
               "--estimate", estimate, "--comment", "Engineering took it")  # fmt: skip
    assert done.exit_code == 0, str(done)
    assert done.stdout.strip() == f"{key}: {ENGINEERING}, estimated resolution {estimate}."

    shown = json.loads(cli("ticket", "show", key, "--json").stdout)["escalation"]
    ticket = stored(desk, key)
    [step_event] = events(desk, key, STEP_EVENT)
    assert shown["current"] == ENGINEERING and shown["estimate"] == estimate
    assert shown["steps"] == [
        {"name": "submitted", "at": ticket.created_at.isoformat(), "current": False},
        {"name": "under evaluation", "at": ticket.escalated_at.isoformat()
         if ticket.escalated_at else None, "current": False},
        {"name": ENGINEERING, "at": step_event.created_at.isoformat(), "current": True},
        {"name": VERIFY, "at": None, "current": False},
        {"name": "resolved", "at": None, "current": False},
    ]  # fmt: skip
    assert json.loads(cli("ticket", "show", plain, "--json").stdout)["escalation"] is None
    text = cli("ticket", "show", key)
    assert text.exit_code == 0 and f"Escalation (estimated resolution: {estimate})" in text.stdout
