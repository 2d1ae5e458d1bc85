"""The summary's remembered days (``store.day_counts``) against the desk's writers: other
processes changing tickets while it is read, a write transaction's uncommitted changes, a
ticket anonymised or deleted. After each, the summary is the list's rows counted."""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, MetaData, delete, insert, text, update
from sqlalchemy.exc import SAWarning
from sqlmodel import Session, col, select

from cxdesk.search_fold import fold_fields
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.events import record_event
from cxdesk.store.models import SEARCHED_FIELDS, Event, Ticket
from cxdesk.store.tickets import update_ticket
from cxdesk.store.views import TicketFilter, ticket_summary
from tests.test_view_summary import (
    NOW,
    assert_summaries_are_the_rows_counted,
    counted_rows,
    local,
    placed_desk,
    ticket_summary_now,
    zone,
)

__all__ = ["zone"]  # the fixture, used by name

WRITER = """
import sys
from cxdesk.store.db import make_engine, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.tickets import update_ticket
engine = make_engine(sys.argv[1])
for key in sys.argv[3:]:
    with transaction(engine) as session:
        update_ticket(session, actor=get_user(session, "maya"), key=key, comment="Moved",
                      changes={"status": sys.argv[2]})
print("done", flush=True)
"""


@pytest.mark.slow
def test_other_processes_change_remembered_days(engine: Engine, db_url: str) -> None:
    """Two other processes change the status of tickets over the month, one at a time, while
    this one reads the summary again and again; once they are done, every filter's summary
    is the rows counted."""
    zone = ZoneInfo("UTC")
    keys = placed_desk(engine, zone)
    now = local(zone, NOW)
    assert_summaries_are_the_rows_counted(engine, now)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, db_url, status, *keys[first::2]],
            stdout=subprocess.PIPE,
            text=True,
        )
        for first, status in ((0, "resolved"), (1, "escalated"))
    ]
    while any(writer.poll() is None for writer in writers):
        ticket_summary_now(engine, now)  # remembered while the writers commit
    assert [writer.communicate()[0].strip() for writer in writers] == ["done", "done"]
    assert_summaries_are_the_rows_counted(engine, now)


def test_a_write_transaction_is_counted_as_it_stands(engine: Engine) -> None:
    """Inside a write transaction the summary counts its own uncommitted change; rolled back,
    nothing of it is remembered."""
    zone = ZoneInfo("UTC")
    keys = placed_desk(engine, zone)
    now = local(zone, NOW)
    before = ticket_summary_now(engine, now)
    with pytest.raises(RuntimeError), transaction(engine) as session:
        update_ticket(session, actor=get_user(session, "maya"), key=keys[4], comment="Done",
                      changes={"status": "resolved"})  # fmt: skip
        inside = ticket_summary(session, TicketFilter(), now=now)
        assert (inside.open, inside.resolved) == (before.open - 1, before.resolved + 1)
        raise RuntimeError("rolled back")
    assert ticket_summary_now(engine, now) == before
    assert_summaries_are_the_rows_counted(engine, now)


def test_a_transaction_committing_far_behind_the_newest_event_is_counted(
    engine: Engine,
) -> None:
    """PostgreSQL: a transaction changes a past day's ticket and stays open while more than
    a thousand other events commit after its own and the summary is read; once it commits,
    the next summary counts its change (its event id is far below the newest, but it was
    running, so the log is read from below it)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite commits one writer at a time, its event ids in order")
    zone = ZoneInfo("UTC")
    keys = placed_desk(engine, zone)
    now = local(zone, NOW)
    assert_summaries_are_the_rows_counted(engine, now)
    before = ticket_summary_now(engine, now)
    with transaction(engine) as late:
        update_ticket(late, actor=get_user(late, "maya"), key=keys[4], comment="Done",
                      changes={"status": "resolved"})  # fmt: skip
        late.flush()  # its event's id taken, not committed
        with transaction(engine) as others:
            others.execute(insert(Event), [{"kind": "note.added"} for _ in range(1500)])
        assert ticket_summary_now(engine, now) == before
        assert_summaries_are_the_rows_counted(engine, now)
    after = ticket_summary_now(engine, now)
    assert (after.open, after.resolved) == (before.open - 1, before.resolved + 1)
    assert_summaries_are_the_rows_counted(engine, now)


def test_another_desk_at_the_same_place_is_counted_afresh(engine: Engine) -> None:
    """The database emptied and made another desk through the same engine (``cxdesk demo
    --reset``, a restored copy), its log as long as the first desk's: the summary counts the
    new desk, not the days remembered of the old one."""
    zone = ZoneInfo("UTC")
    keys = placed_desk(engine, zone)
    now = local(zone, NOW)
    resolve = {"status": "resolved"}
    with transaction(engine) as session:
        update_ticket(session, actor=get_user(session, "maya"), key=keys[4], comment="Done",
                      changes=resolve)  # fmt: skip
    assert_summaries_are_the_rows_counted(engine, now)
    assert_summaries_are_the_rows_counted(engine, now)  # PostgreSQL: now kept
    with transaction(engine) as session:
        emptied_in_place(session)
    keys = placed_desk(engine, zone)
    with transaction(engine) as session:  # as many events as the first desk, another ticket
        update_ticket(session, actor=get_user(session, "maya"), key=keys[9], comment="Done",
                      changes=resolve)  # fmt: skip
    assert_summaries_are_the_rows_counted(engine, now)


def emptied_in_place(session: Session) -> None:
    """Every table emptied, ids from 1 again and another desk's name, as a new database."""
    tables = MetaData()
    tables.reflect(session.connection())
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        session.execute(text("PRAGMA defer_foreign_keys = ON"))
    with warnings.catch_warnings():  # ticket <-> survey_response: sorted without them
        warnings.simplefilter("ignore", SAWarning)
        ordered = tables.sorted_tables
    for table in ordered:
        if table.name != "alembic_version":
            session.execute(delete(table))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "SELECT setval(c.oid, 1, false) FROM pg_class c WHERE c.relkind = 'S' "
                "AND c.relnamespace = current_schema()::regnamespace"
            )
        )
    session.execute(text("INSERT INTO desk_revision VALUES (1, 'another desk', 0)"))


def test_an_anonymised_ticket_leaves_the_text_filter(engine: Engine) -> None:
    """A ticket whose customer is anonymised (its searched text rewritten, with its event)
    no longer matches the text filter its day was remembered for."""
    zone = ZoneInfo("UTC")
    keys = placed_desk(engine, zone)
    now = local(zone, NOW)
    flt = TicketFilter(text="Placed 10")
    with read_session(engine) as session:
        assert ticket_summary(session, flt, now=now).total == 1
    with transaction(engine) as session:
        ticket = session.exec(select(Ticket).where(col(Ticket.key) == keys[10])).one()
        values = {"title": "Anonymised", "customer_name": "", "customer_email": ""}
        row = {name: values.get(name, getattr(ticket, name)) for name in SEARCHED_FIELDS}
        session.execute(
            update(Ticket)
            .where(col(Ticket.key) == keys[10])
            .values(**values, search_fold=fold_fields(*row.values()))
        )
        record_event(session, kind="ticket.updated", actor=None, ticket_id=ticket.id)
    with read_session(engine) as session:
        assert ticket_summary(session, flt, now=now) == counted_rows(session, flt, now)
        assert ticket_summary(session, flt, now=now).total == 0


def test_a_deleted_ticket_is_no_longer_counted(engine: Engine) -> None:
    """A ticket deleted the way a delete must (``day_counts.FORGETS_ALL``): its rows but
    not its events (they leave it, the log is never shortened: SQLite would give the highest
    ids again), and a ``ticket.deleted`` event, above every id read so far. It leaves every
    remembered day's summary."""
    zone = ZoneInfo("UTC")
    keys = placed_desk(engine, zone)
    now = local(zone, NOW)
    with transaction(engine) as session:  # its events the newest
        update_ticket(session, actor=get_user(session, "maya"), key=keys[10], comment="Done",
                      changes={"status": "resolved"})  # fmt: skip
    assert_summaries_are_the_rows_counted(engine, now)
    before = ticket_summary_now(engine, now)
    with transaction(engine) as session:
        gone = session.exec(select(Ticket).where(col(Ticket.key) == keys[10])).one()
        tables = MetaData()
        tables.reflect(session.connection())
        with warnings.catch_warnings():  # ticket <-> survey_response: sorted without them
            warnings.simplefilter("ignore", SAWarning)
            ordered = list(reversed(tables.sorted_tables))
        highest = max(session.exec(select(Event.id)).all(), key=lambda i: i or 0)
        session.execute(update(Event).where(col(Event.ticket_id) == gone.id).values(ticket_id=None))
        for table in ordered:
            for key in table.foreign_keys:
                if key.column.table.name == "ticket" and table.name not in ("ticket", "event"):
                    session.execute(delete(table).where(key.parent == gone.id))
        session.execute(delete(Ticket).where(col(Ticket.id) == gone.id))
        deleted = Event(kind="ticket.deleted", detail=keys[10])  # no such operation yet
        session.add(deleted)
        session.flush()
        assert (deleted.id or 0) > (highest or 0)
    after = ticket_summary_now(engine, now)
    assert after.total == before.total - 1
    assert_summaries_are_the_rows_counted(engine, now)


def test_days_counted_in_another_zone_are_other_days(engine: Engine) -> None:
    """The same filter read in two time zones in one process: each zone's days are its own."""
    keys = placed_desk(engine, ZoneInfo("Asia/Kolkata"))
    assert keys
    for name in ("Asia/Kolkata", "America/Los_Angeles", "Asia/Kolkata"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("TZ", name)
            time.tzset()
            assert_summaries_are_the_rows_counted(engine, local(ZoneInfo(name), NOW))
        time.tzset()
