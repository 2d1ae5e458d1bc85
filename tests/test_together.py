"""A check-in's rows as the database holds them: what the check-in kept in hand (the response,
the ticket, their log lines, the ticket's data) reads back column for column from a new
session, on SQLite and on PostgreSQL, where the rows that go together are written by one
statement each (``store.together``): every value cast to its column's type and converted as
SQLAlchemy converts it (JSON, times with their zone, text past a cast without its length)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import SQLModel, col, select

from cxdesk.engine.dispatch import dispatch_pending, unit_of_work
from cxdesk.errors import ValidationFailed
from cxdesk.search_fold import fold
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_user, set_setting
from cxdesk.store.models import (
    Event,
    SurveyResponse,
    Ticket,
    TicketData,
    as_utc,
    fold_for_search,
)
from cxdesk.store.surveys import submit_response
from cxdesk.store.tickets import TicketDraft, create_ticket
from tests.desk import build_small_desk

ANSWERS = {"first_name": "Zoë", "last_name": "O'Neil 🙂", "email": "zoe@example.com",
           "phone": "415 555 2671", "product": "360",
           "notes": "Dashboards\nand \"filters\""}  # fmt: skip


def columns(row: SQLModel) -> dict[str, Any]:
    """The row's columns; times as aware UTC (SQLite hands them back without their zone)."""
    table: Any = row.__table__  # type: ignore[attr-defined]
    found = {column.name: getattr(row, column.name) for column in table.columns}
    return {
        name: as_utc(value) if isinstance(value, datetime) else value
        for name, value in found.items()
    }


def test_what_a_checkin_held_is_what_was_written(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL's session in a zone not UTC, at a half hour: a time cast to the wrong type
    # would read back moved (each connection of the test's engine is made after this).
    monkeypatch.setenv("PGTZ", "America/St_Johns")
    build_small_desk(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW TimeZone").scalar() == "America/St_Johns"
    with transaction(engine) as session:
        vera = get_user(session, "vera")
        response = submit_response(session, actor=vera, survey_name="checkin", answers=ANSWERS)
        dispatch_pending(session)  # its workflow makes the ticket
        ticket = session.exec(select(Ticket).where(Ticket.response_id == response.id)).one()
        lines = session.exec(
            select(Event).where(col(Event.kind).in_(["survey.response", "ticket.created"]))
        ).all()
        held = [columns(row) for row in (response, ticket, *lines)]
        held_data = (
            ticket.id,
            [
                (row.position, row.name, row.value)
                for row in session.exec(select(TicketData).where(TicketData.ticket_id == ticket.id))
            ],
        )
    assert {line["kind"] for line in held[2:]} == {"survey.response", "ticket.created"}
    with read_session(engine) as session:
        again = [
            columns(session.get(type_, row["id"]))  # type: ignore[arg-type]
            for type_, row in zip((SurveyResponse, Ticket, Event, Event), held, strict=True)
        ]
        data = session.exec(
            select(TicketData.position, TicketData.name, TicketData.value)
            .where(TicketData.ticket_id == held_data[0])
            .order_by(col(TicketData.position))
        ).all()
    assert again == held
    assert [tuple(row) for row in data] == sorted(held_data[1])
    assert len(data) == 6 and held[0]["answers"]["notes"] == ANSWERS["notes"]
    assert [line["response_id"] for line in held[2:] if line["kind"] == "survey.response"] == [
        response.id
    ]


def test_a_ticket_without_data_and_a_name_too_long_are_written_as_before(engine: Engine) -> None:
    build_small_desk(engine)
    with unit_of_work(engine) as session:
        ticket = create_ticket(session, actor=None, draft=TicketDraft(title="No data", team="360"))
        key = ticket.key
    with read_session(engine) as session:
        assert session.exec(select(Ticket.title).where(Ticket.key == key)).one() == "No data"
        assert not session.exec(select(TicketData).where(TicketData.ticket_id == ticket.id)).all()
    with pytest.raises(ValidationFailed), unit_of_work(engine) as session:
        submit_response(session, actor=None, survey_name="checkin",
                        answers={**ANSWERS, "first_name": "x" * 5000})  # fmt: skip


def test_a_key_made_around_the_id_folds_as_the_ticket_does(engine: Engine) -> None:
    """On PostgreSQL the statement takes the id and makes the key and the search text around
    it: both read back as the model makes them from the ticket's fields."""
    build_small_desk(engine)
    with unit_of_work(engine) as session:
        set_setting(session, "ticket_prefix", "Ünï")
    with unit_of_work(engine) as session:
        draft = TicketDraft(title="Ｆｕｌｌwidth Straße", team="360", customer_name="Zoë")
        key, ticket_id = (made := create_ticket(session, actor=None, draft=draft)).key, made.id
    with read_session(engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
        stored = ticket.search_fold
        fold_for_search(ticket)
    assert key == f"Ünï-{ticket_id}"
    assert stored == ticket.search_fold
    assert stored.startswith(f"uni-{ticket_id}\x1ffullwidth strasse\x1fzoe")


@pytest.mark.parametrize("head", ["EXP-", "Ünï-", "ＥＸＰ-", "İstanbul-", "Straße-", "山田-", "Ǆ-"])
def test_a_key_folds_as_its_head_then_its_digits(head: str) -> None:
    """What ``create_ticket`` relies on to make the search text around the id in SQL."""
    for digits in ("1", "42", "1234567890"):
        assert fold(head + digits) == fold(head) + digits


def test_a_value_too_long_for_its_column_writes_nothing_and_raises_as_before(
    pg_url: str,
) -> None:
    """Review rev1: the cast without a length must not cut a value: a data name past its
    column's 100 characters and a phone past its 32 are refused (``DataError``, as the
    separate INSERTs raised it), and none of the ticket, its data or its event is left."""
    from sqlalchemy.exc import DataError

    from cxdesk.store.db import make_engine

    engine = make_engine(pg_url)
    try:
        build_small_desk(engine)
        drafts = [
            TicketDraft(title="Too long", team="360", data=[("n" * 101, "v")]),
            TicketDraft(title="Too long", team="360", customer_phone="1" * 33),
        ]
        for draft in drafts:
            with pytest.raises(DataError), unit_of_work(engine) as session:
                create_ticket(session, actor=None, draft=draft)
        with read_session(engine) as session:
            assert not session.exec(select(Ticket).where(Ticket.title == "Too long")).all()
            assert not session.exec(select(TicketData)).all()
            assert not session.exec(select(Event).where(Event.kind == "ticket.created")).all()
    finally:
        engine.dispose()
