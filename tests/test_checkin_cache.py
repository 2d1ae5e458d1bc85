"""A check-in's cost and its caches: the statements of one check-in, the cached desk
definitions (``store.definitions``) following every change, whoever makes it, and the config
file read again when it changed (``config.load_settings``)."""

from __future__ import annotations

import gc
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from cxdesk.config import load_settings
from cxdesk.engine.dispatch import dispatch_pending, unit_of_work
from cxdesk.engine.workflows import save_workflow, set_enabled
from cxdesk.store.db import make_engine, read_session, transaction
from cxdesk.store.definitions import desk_definitions
from cxdesk.store.directory import add_team, get_user, set_setting
from cxdesk.store.events import take_pending_events
from cxdesk.store.migrate import upgrade
from cxdesk.store.models import Queue, Ticket, simulated_clock
from cxdesk.store.sla_policies import save_calendar, save_policy
from cxdesk.store.survey_links import desk_secret
from cxdesk.store.surveys import submit_response
from cxdesk.store.waiting import ticket_wait
from tests.cli_helpers import run_console_script, table_counts
from tests.desk import build_small_desk

ANSWERS = {"first_name": "Zoë", "last_name": "O'Neil", "email": "zoe@example.com",
           "phone": "415 555 2671", "product": "360", "notes": "Dashboards"}  # fmt: skip

STATEMENTS = {
    "sqlite": {"SELECT": 1, "INSERT": 6, "UPDATE": 1},
    "postgresql": {"SELECT": 1, "WITH": 3},
}
"""One check-in on the small desk (one matching workflow: a ticket with six data rows), the
definitions (SLA policies too) cached. Read: the revision (the submitting volunteer is the
one handed in, not read back). Written: the response, its event, the ticket (its id taken by
its INSERT, its key made around it), its data (one INSERT), its event, the workflow runs of
both events (one INSERT); set: the two events' dispatch times (one UPDATE, executemany). On
PostgreSQL, where each statement is a round trip, what goes together is one statement
(``store.together``): the response with its event, the ticket (its id taken there) with its
data and its event, and the runs with the dispatch times (``WITH runs AS (INSERT ...) UPDATE
...``, over arrays). (On the benchmark's demo desk: 15 statements on SQLite, 8 on
PostgreSQL; 66 before issue 18.)"""


def check_in(engine: Engine, **answers: str) -> str:
    """One check-in as vera; the key of the ticket it made (empty: none)."""
    with unit_of_work(engine) as session:
        vera = get_user(session, "vera")
        response = submit_response(
            session, actor=vera, survey_name="checkin", answers={**ANSWERS, **answers}
        )
        response_id = response.id
    with read_session(engine) as session:
        key = session.exec(select(Ticket.key).where(Ticket.response_id == response_id)).first()
    return key or ""


def send_360_to(session: Session, team: str, title: str) -> None:
    """Change the small desk's "Check-in: 360" workflow: its tickets to ``team``, titled so."""
    save_workflow(session, actor=None, name="Check-in: 360", event="survey.response",
                  survey_name="checkin",
                  conditions={"field": "q://product", "op": "is", "value": "360"},
                  tasks=[{"type": "create_ticket", "team": team, "title": title}])  # fmt: skip


@contextmanager
def statements(engine: Engine) -> Iterator[Counter[str]]:
    """The statements ``engine`` runs inside the block, counted by their first word."""
    counted: Counter[str] = Counter()

    def count(*args: Any) -> None:
        counted[str(args[2]).split()[0].upper()] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield counted
    finally:
        event.remove(engine, "before_cursor_execute", count)


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    check_in(engine)  # the survey links' secret made
    with read_session(engine) as session:
        desk_definitions(session)  # read and cached (not by the check-in that wrote one)
    return engine


@pytest.fixture
def other_engine(db_url: str) -> Iterator[Engine]:
    """A second engine on the same desk: another terminal's, its own cache."""
    other = make_engine(db_url)
    yield other
    other.dispose()


def test_one_checkin_runs_the_statements_it_needs_and_no_more(desk: Engine) -> None:
    with unit_of_work(desk) as session:
        vera = get_user(session, "vera")
    with statements(desk) as counted, unit_of_work(desk) as session:
        submit_response(session, actor=vera, survey_name="checkin", answers=ANSWERS)
    counted.pop("BEGIN", None)  # SQLite's BEGIN IMMEDIATE (PostgreSQL's is not a statement)
    assert dict(counted) == STATEMENTS[desk.dialect.name]


def test_a_checkin_leaves_no_reference_cycles(desk: Engine) -> None:
    """Everything a check-in's session held is freed as it closes, not by the cycle collector
    (a transaction kept in ``session.info`` made the whole session a cycle: a full collection
    over the process's objects every few hundred check-ins, a tenth of their time)."""
    with unit_of_work(desk) as session:
        vera = get_user(session, "vera")
    check_in(desk)  # anything made once, made
    gc.collect()
    gc.disable()
    try:
        with unit_of_work(desk) as session:
            submit_response(session, actor=vera, survey_name="checkin", answers=ANSWERS)
        del session
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_a_workflow_changed_elsewhere_is_used_by_the_next_checkin(
    desk: Engine, other_engine: Engine
) -> None:
    assert check_in(desk).startswith("EXP-")
    with transaction(other_engine) as session:
        set_enabled(session, actor=None, name="Check-in: 360", enabled=False)
    assert check_in(desk) == ""  # no workflow creates it now
    with transaction(other_engine) as session:
        set_enabled(session, actor=None, name="Check-in: 360", enabled=True)
        send_360_to(session, "Solo", "Moved: ${q://first_name}")
    key = check_in(desk)
    with read_session(desk) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
        assert ticket.title == "Moved: Zoë"
        assert ticket.team_id == desk_definitions(session).teams["Solo"].id


def test_a_setting_and_a_team_changed_elsewhere_are_used_by_the_next_checkin(
    desk: Engine, other_engine: Engine
) -> None:
    with transaction(other_engine) as session:
        set_setting(session, "ticket_prefix", "HELP")
        add_team(session, actor=None, name="Walk-ins")
        send_360_to(session, "Walk-ins", "${q://first_name}")
    key = check_in(desk)
    assert key.startswith("HELP-")
    with read_session(desk) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
        assert desk_definitions(session).team_names[ticket.team_id] == "Walk-ins"


def test_sla_policies_and_calendars_changed_elsewhere_are_used_by_the_next_checkin(
    desk: Engine, other_engine: Engine
) -> None:
    """The policies (and their desk hours) a new ticket's clocks start from are cached too."""

    def due_minutes(key: str) -> float | None:
        with read_session(desk) as session:
            ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
            if ticket.first_response_due_at is None:
                return None
            return (ticket.first_response_due_at - ticket.created_at).total_seconds() / 60

    assert due_minutes(check_in(desk)) is None  # no policy yet
    always = {"mon": [["00:00", "24:00"]], "tue": [["00:00", "24:00"]],
              "wed": [["00:00", "24:00"]], "thu": [["00:00", "24:00"]],
              "fri": [["00:00", "24:00"]], "sat": [["00:00", "24:00"]],
              "sun": [["00:00", "24:00"]]}  # fmt: skip
    with transaction(other_engine) as session:
        save_calendar(session, name="Open", time_zone="UTC", weekly=always, exceptions=[])
        save_policy(session, name="Walk-ins", settings={"first_response_minutes": 30,
                                                         "calendar": "Open"})  # fmt: skip
    assert due_minutes(check_in(desk)) == 30
    with transaction(other_engine) as session:
        save_policy(session, name="Walk-ins", settings={"first_response_minutes": 45,
                                                         "calendar": "Open"})  # fmt: skip
    assert due_minutes(check_in(desk)) == 45
    with transaction(other_engine) as session:  # the calendar changed: mornings only
        save_calendar(session, name="Open", time_zone="UTC", weekly={"mon": [["08:00", "10:10"]]},
                      exceptions=[])  # fmt: skip
    monday_ten = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    with simulated_clock(lambda: monday_ten):
        # 10 minutes this Monday, the other 35 from 08:00 next Monday
        assert due_minutes(check_in(desk)) == 7 * 24 * 60 - 2 * 60 + 35


def test_a_queue_changed_elsewhere_is_where_the_next_position_is_counted(
    desk: Engine, other_engine: Engine
) -> None:
    """The queue a ticket's position is counted in (its team's first) is cached too."""
    key = check_in(desk)
    with transaction(other_engine) as session:
        queue = session.exec(select(Queue).where(Queue.name == "360")).one()
        queue.name = "Three-sixty"
        session.add(queue)
    with read_session(desk) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
        wait = ticket_wait(session, ticket)
        assert wait is not None and wait.queue == "Three-sixty"


def _plain_sql(db_url: str, statement: str) -> None:
    """Run ``statement`` through the bare driver, outside cxdesk (another program)."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        with closing(sqlite3.connect(str(url.database))) as connection, connection:
            connection.execute(statement)
    else:
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo) as server:
            server.execute(statement)


def test_a_change_by_plain_sql_moves_the_revision(desk: Engine, db_url: str) -> None:
    """The triggers see every writer, not only cxdesk's store."""
    with read_session(desk) as session:
        before = desk_definitions(session).revision
    _plain_sql(db_url, "UPDATE team SET name = 'Three-sixty' WHERE name = '360'")
    with read_session(desk) as session:
        known = desk_definitions(session)
        assert known.revision > before
        assert "Three-sixty" in known.teams and "360" not in known.teams


def test_a_writer_with_another_search_path_moves_the_revision(pg_url: str) -> None:
    """Migration 0024's trigger function finds its table whatever the writer's search_path
    (another program naming the desk's tables by their schema)."""
    engine = make_engine(pg_url)
    try:
        with read_session(engine) as session:
            before = desk_definitions(session).revision
            schema = session.execute(text("SELECT current_schema()")).scalar_one()
        _plain_sql(
            pg_url,
            f"SET search_path TO pg_catalog; "
            f"INSERT INTO \"{schema}\".desk_setting (name, value) VALUES ('ticket_prefix', 'QUAL')",
        )
        with read_session(engine) as session:
            known = desk_definitions(session)
            assert known.revision > before
            assert known.settings["ticket_prefix"] == "QUAL"
    finally:
        engine.dispose()


def test_a_session_sees_its_own_change_of_a_definition(desk: Engine) -> None:
    with transaction(desk) as session:
        assert desk_definitions(session).settings.get("ticket_prefix") is None
        set_setting(session, "ticket_prefix", "OWN")
        assert desk_definitions(session).settings["ticket_prefix"] == "OWN"
        session.rollback()
        assert desk_definitions(session).settings.get("ticket_prefix") is None


def test_a_definition_written_in_a_rolled_back_savepoint_is_not_read_after(
    desk: Engine,
) -> None:
    """The rest of the transaction reads the definitions as the savepoint's rollback left
    them (the responses import refuses a row this way)."""
    with transaction(desk) as session:
        with pytest.raises(RuntimeError), session.begin_nested():
            set_setting(session, "ticket_prefix", "GONE")
            assert desk_definitions(session).settings["ticket_prefix"] == "GONE"
            raise RuntimeError("this row is refused")
        assert desk_definitions(session).settings.get("ticket_prefix") is None


def assert_the_next_commit_is_read(desk: Engine, other_engine: Engine) -> None:
    """A change committed through ``other_engine`` is what ``desk`` reads next (not a copy a
    rolled-back transaction read under the same revision number)."""
    with transaction(other_engine) as session:
        set_setting(session, "ticket_prefix", "KEPT")
    with read_session(desk) as session:
        assert desk_definitions(session).settings["ticket_prefix"] == "KEPT"


def test_a_copy_read_before_a_rollback_is_never_handed_out(
    desk: Engine, other_engine: Engine
) -> None:
    """A copy read in a transaction that moved the revision and then rolled back is not the
    desk's at that revision: the next change committed elsewhere reuses the number."""
    with pytest.raises(RuntimeError), transaction(desk) as session:
        set_setting(session, "ticket_prefix", "GONE")
        assert desk_definitions(session).settings["ticket_prefix"] == "GONE"
        raise RuntimeError("rolled back")
    assert_the_next_commit_is_read(desk, other_engine)


def test_a_savepoint_rolled_back_after_a_write_shares_nothing(
    desk: Engine, other_engine: Engine
) -> None:
    """A savepoint's rollback leaves the transaction's own write in place: what it reads
    after stays its own."""
    with pytest.raises(RuntimeError), transaction(desk) as session:
        set_setting(session, "ticket_prefix", "GONE")
        with pytest.raises(RuntimeError), session.begin_nested():
            raise RuntimeError("a row refused")
        assert desk_definitions(session).settings["ticket_prefix"] == "GONE"
        raise RuntimeError("rolled back")
    assert_the_next_commit_is_read(desk, other_engine)


def test_a_secret_made_in_a_failed_transaction_never_signs_a_link(
    engine: Engine, other_engine: Engine
) -> None:
    """The survey links' secret, written by plain SQL (``forget_definitions``) in a first
    check-in that failed: the links are signed with the secret that was stored."""
    build_small_desk(engine)  # no check-in yet: no secret
    with pytest.raises(RuntimeError), transaction(engine) as session:
        desk_secret(session)
        desk_definitions(session)  # the check-in reads on
        raise RuntimeError("the first check-in failed")
    with transaction(other_engine) as session:
        stored = desk_secret(session)
    with read_session(engine) as session:
        assert desk_secret(session) == stored


def test_a_transaction_on_a_connection_uses_the_cache(desk: Engine) -> None:
    """``transaction(connection)`` (a loop of short transactions) shares the engine's copy."""
    with read_session(desk) as session:
        cached = desk_definitions(session)
    with desk.connect() as connection, transaction(connection) as session:
        assert desk_definitions(session) is cached


def test_each_desk_has_its_own_definitions(engine: Engine, tmp_path: Path) -> None:
    """Two desks in one process (as the tests make them) never share their definitions."""
    build_small_desk(engine)
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        upgrade(other)
        with transaction(other) as session:
            add_team(session, actor=None, name="Elsewhere")
        with read_session(engine) as mine, read_session(other) as theirs:
            assert "360" in desk_definitions(mine).teams
            assert set(desk_definitions(theirs).teams) == {"Elsewhere"}
    finally:
        other.dispose()


@pytest.mark.slow
@pytest.mark.usefixtures("cli")  # its environment: the desk's URL, the admin's proof
def test_a_workflow_disabled_by_another_process_stops_the_next_checkin(desk: Engine) -> None:
    """Another process's change (the ``cxdesk`` command) reaches this one's cache."""
    assert check_in(desk).startswith("EXP-")
    result = run_console_script("workflow", "disable", "Check-in: 360", "--as", "admin")
    assert result.exit_code == 0, str(result)
    assert check_in(desk) == ""
    with read_session(desk) as session:
        enabled = [w.name for w in desk_definitions(session).workflows["survey.response"]]
        assert "Check-in: 360" not in enabled


def test_a_checkin_after_one_rolled_back_in_the_same_transaction(desk: Engine) -> None:
    """The rows a rolled-back savepoint wrote are gone, and leave nothing in hand that the
    next ones (which SQLite gives the same ids) would collide with (responses import does
    this): the transaction wrote what one check-in writes."""
    before = table_counts(desk)
    with unit_of_work(desk) as session:
        vera = get_user(session, "vera")
        with pytest.raises(RuntimeError), session.begin_nested():
            submit_response(session, actor=vera, survey_name="checkin", answers=ANSWERS)
            dispatch_pending(session)
            raise RuntimeError("this row is refused")
        take_pending_events(session)
        response = submit_response(session, actor=vera, survey_name="checkin", answers=ANSWERS)
        response_id = response.id
    with read_session(desk) as session:
        made = session.exec(select(Ticket).where(Ticket.response_id == response_id)).all()
        assert [ticket.customer_name for ticket in made] == ["Zoë O'Neil"]
    after = table_counts(desk)
    check_in(desk)
    assert {t: n - before[t] for t, n in after.items()} == {
        t: n - after[t] for t, n in table_counts(desk).items()
    }


def test_the_settings_are_read_again_when_the_file_or_a_variable_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    long_ago = time.time() - 60

    def write(text: str, age: float) -> None:
        config.write_text(text, encoding="utf-8")
        os.utime(config, (long_ago + age, long_ago + age))

    monkeypatch.delenv("CXDESK_SURVEY_URL", raising=False)
    write('survey_url = "http://a.example"\n', 0)
    first = load_settings(config)
    assert first.survey_url == "http://a.example"
    assert load_settings(config) is first  # not read again
    write('survey_url = "http://b.example"\n', 1)  # same size, another time
    assert load_settings(config).survey_url == "http://b.example"
    monkeypatch.setenv("CXDESK_SURVEY_URL", "http://c.example")
    assert load_settings(config).survey_url == "http://c.example"
    config.write_text('survey_url = "http://d.example"\n', encoding="utf-8")  # just now
    monkeypatch.delenv("CXDESK_SURVEY_URL")
    assert load_settings(config).survey_url == "http://d.example"
    config.write_text('survey_url = "http://e.example"\n', encoding="utf-8")  # same tick?
    assert load_settings(config).survey_url == "http://e.example"  # a fresh file is re-read
