"""PostgreSQL: the usual pull runs as a statement prepared on libpq (``store.pg_prepared``).

What that way must keep: the values and rows as text in the connection's encoding (a queue
name with accents and a quote), the statement prepared again when the server lost it, a
server failure as one clear line, and the pull's log lines (the trigger) with it.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from cxdesk.errors import DeskError
from cxdesk.store.db import make_engine, read_session, transaction
from cxdesk.store.directory import add_queue, add_team, add_user, ensure_builtin_statuses
from cxdesk.store.models import Event, Ticket, User
from cxdesk.store.pull import pull_next
from cxdesk.store.tickets import TicketDraft, create_ticket

QUEUE = "Équipe d'été"


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    with transaction(engine) as session:
        ensure_builtin_statuses(session)
        add_team(session, actor=None, name=QUEUE)
        add_queue(session, actor=None, name=QUEUE, team=QUEUE)
        add_user(
            session,
            actor=None,
            username="kenji",
            name="Kenji",
            email="kenji@example.com",
            password="not-a-secret",
            role="expert",
            teams=[QUEUE],
        )
        for n in range(4):
            create_ticket(session, actor=None, draft=TicketDraft(f"Ticket {n}", QUEUE))
    yield engine
    engine.dispose()


def _expert(engine: Engine) -> User:
    with read_session(engine) as session:
        return session.exec(select(User).where(User.username == "kenji")).one()


def _pull_log(engine: Engine, ticket_id: int) -> list[tuple[str | None, ...]]:
    with read_session(engine) as session:
        rows = session.exec(
            select(Event.kind, Event.to_value, Event.detail)
            .where(Event.ticket_id == ticket_id, col(Event.kind) != "ticket.created")
            .order_by(col(Event.id))
        ).all()
    return [tuple(row) for row in rows]


def test_prepared_pull_keeps_text_and_the_log(pg_engine: Engine) -> None:
    expert = _expert(pg_engine)
    with pg_engine.connect() as connection:
        pulled = [pull_next(connection, actor=expert, queue_name=QUEUE) for _ in range(3)]
    assert [p.queue for p in pulled] == [QUEUE] * 3
    with read_session(pg_engine) as session:
        keys = session.exec(select(Ticket.key).order_by(col(Ticket.id))).all()
        owners = session.exec(select(Ticket.owner_id).order_by(col(Ticket.id))).all()
    assert [p.key for p in pulled] == keys[:3]
    assert owners == [expert.id] * 3 + [None]
    for p in pulled:  # the later pulls took the prepared way: their log as the first's
        assert _pull_log(pg_engine, p.id) == [
            ("ticket.assigned_from_queue", "kenji", QUEUE),
            ("ticket.status_changed", "open", None),
        ]


def test_prepared_pull_prepares_again_when_the_server_lost_it(pg_engine: Engine) -> None:
    expert = _expert(pg_engine)
    with pg_engine.connect() as connection:
        first = pull_next(connection, actor=expert, queue_name=QUEUE)  # reads the queue
        second = pull_next(connection, actor=expert, queue_name=QUEUE)  # prepares
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:  # what a pooler's DISCARD ALL does to it
            cursor.execute("DEALLOCATE ALL")
        driver.commit()
        third = pull_next(connection, actor=expert, queue_name=QUEUE)
    assert first.id < second.id < third.id
    assert _pull_log(pg_engine, third.id)[0] == ("ticket.assigned_from_queue", "kenji", QUEUE)


def test_prepared_pull_reports_a_lost_server_in_one_line(pg_engine: Engine, pg_url: str) -> None:
    expert = _expert(pg_engine)
    with pg_engine.connect() as connection:
        pull_next(connection, actor=expert, queue_name=QUEUE)
        pull_next(connection, actor=expert, queue_name=QUEUE)
        driver = connection.connection.driver_connection
        assert driver is not None
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (driver.info.backend_pid,))
        with pytest.raises(DeskError, match=r"^Database error: ") as raised:
            pull_next(connection, actor=expert, queue_name=QUEUE)
        assert "\n" not in str(raised.value)
    with read_session(pg_engine) as session:  # nothing claimed by the failed pull
        owned = session.exec(select(Ticket.id).where(col(Ticket.owner_id).is_not(None))).all()
    assert len(owned) == 2


def test_no_statement_is_prepared_when_psycopg_is_told_to_prepare_none(
    pg_engine: Engine,
) -> None:
    # prepare_threshold=None: PgBouncer's transaction pooling, where a statement prepared on
    # one server connection would be run on another: the pull goes the cursor's way.
    expert = _expert(pg_engine)
    with pg_engine.connect() as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        driver.prepare_threshold = None
        pulled = [pull_next(connection, actor=expert, queue_name=QUEUE) for _ in range(3)]
        prepared = connection.exec_driver_sql("SELECT name FROM pg_prepared_statements").all()
        driver.prepare_threshold = 5  # as psycopg's default, for the next user of the pool
    assert prepared == []
    assert len({p.id for p in pulled}) == 3
    assert _pull_log(pg_engine, pulled[-1].id)[0] == ("ticket.assigned_from_queue", "kenji", QUEUE)
