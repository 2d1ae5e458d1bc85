"""The lean reads (``cxdesk.store.lean``: the login and the queues screen's first fill, through
the DB-API driver) equal the store's reads of the same rows, SQLite and PostgreSQL: every queue
with its waiting count and oldest wait (ties in time), each user's teams (an expert on none, a
volunteer), their open tickets (paused ones counted open, resolved ones not, ties in time),
the login's user and failure rows, the desk's language and zone; and a desk the lean reader
cannot read is left to the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from cxdesk.store import directory, logins
from cxdesk.store import tickets as ops
from cxdesk.store.db import read_session, transaction
from cxdesk.store.lean import (
    LeanDesk,
    check_password_lean,
    head_revision,
    login_source,
    open_lean,
)
from cxdesk.store.models import LoginFailure, simulated_clock
from cxdesk.store.user_language import spoken_language
from tests.cli_helpers import TEST_PASSWORD
from tests.desk import build_small_desk
from tests.imports import modules_loaded_by

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PEOPLE = ("maya", "omar", "kenji", "vera", "admin")
SHOWN = ("key", "title", "status", "priority", "team", "updated_at")


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def lean_desk(engine: Engine) -> LeanDesk:
    desk = open_lean(url_of(engine))
    assert desk is not None
    return desk


def ticket(engine: Engine, title: str, team: str, *, minutes: int, **draft: str) -> None:
    with simulated_clock(lambda: START + timedelta(minutes=minutes)), transaction(engine) as s:
        ops.create_ticket(s, actor=None, draft=ops.TicketDraft(title=title, team=team, **draft))


def seeded(engine: Engine) -> Engine:
    """The small desk with waiting tickets (two created at the same instant in each of two
    teams: ties), maya's tickets in open, paused and resolved statuses (two at one instant),
    an empty queue (Solo), and a second queue on team 360."""
    build_small_desk(engine)
    with transaction(engine) as s:
        directory.add_status(s, actor=None, name="Waiting on customer", category="paused")
        directory.add_queue(s, actor=None, name="360 priority", team="360", ordering="priority")
    for minutes, team in ((5, "360"), (5, "Stats iQ"), (5, "360"), (9, "Stats iQ")):
        ticket(engine, f"Waiting {team} {minutes}", team, minutes=minutes)
    for minutes, status in ((1, "open"), (1, "Waiting on customer"), (2, "resolved"), (3, "new")):
        ticket(engine, f"Mine {status}", "360", minutes=minutes, status=status, owner="maya")
    ticket(engine, "Omar's", "360", minutes=4, owner="omar", status="escalated")
    return engine


def store_fill(engine: Engine, username: str) -> tuple[list[object], frozenset[str], list[object]]:
    """What the queues screen reads through the store (``QueuesScreen._read_all``)."""
    from cxdesk.store.models import StatusCategory

    with read_session(engine) as session:
        user = directory.get_user(session, username)
        open_statuses = {
            s.name
            for s in directory.list_statuses(session)
            if s.category != StatusCategory.resolved
        }
        mine = [t for t in ops.list_tickets(session, owner=username) if t.status in open_statuses]
        shown = [{name: row[name] for name in SHOWN} for row in ops.tickets_to_dicts(session, mine)]
        return (
            list(ops.queue_overview(session)),
            frozenset(team.name for team in directory.user_teams(session, user)),
            shown if user.role != "volunteer" else [],
        )


@pytest.mark.parametrize("session_zone", ["UTC", "America/St_Johns"])
def test_the_first_fill_reads_what_the_store_reads(
    engine: Engine, session_zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL hands times back in the session's zone (the server's TimeZone, here set
    # for every connection the test makes): both readers give them in UTC all the same.
    monkeypatch.setenv("PGTZ", session_zone)
    lean = lean_desk(seeded(engine))
    for username in PEOPLE:
        with read_session(engine) as session:
            user = directory.get_user(session, username)
        fill = lean.first_fill(user.id, user.role)
        queues, teams, mine = store_fill(engine, username)
        assert (fill.queues, fill.my_teams, fill.my_tickets) == (queues, teams, mine), username
    maya = lean.first_fill(*_id_and_role(engine, "maya"))
    assert [t["title"] for t in maya.my_tickets] == [
        "Mine new", "Mine Waiting on customer", "Mine open"
    ]  # fmt: skip
    assert {q.name: q.waiting for q in maya.queues} == {
        "360": 2, "360 priority": 2, "Solo": 0, "Stats iQ": 2
    }  # fmt: skip
    admin = lean.first_fill(*_id_and_role(engine, "admin"))
    assert admin.my_teams == frozenset() and admin.my_tickets == []


def _id_and_role(engine: Engine, username: str) -> tuple[int | None, str]:
    with read_session(engine) as session:
        user = directory.get_user(session, username)
    return user.id, user.role


def test_the_login_reads_what_the_store_reads(engine: Engine) -> None:
    lean = lean_desk(seeded(engine))
    source = login_source()
    outcome, row = check_password_lean(lean, "maya", TEST_PASSWORD, source=source)
    stored = logins.check_password(engine, "maya", TEST_PASSWORD, source=source)
    assert outcome == "in" and row is not None
    assert (row.id, row.username, row.name, row.role, row.password_hash, row.active) == (
        stored.id, stored.username, stored.name, stored.role, stored.password_hash, stored.active
    )  # fmt: skip
    assert check_password_lean(lean, "maya", "wrong", source=source) == ("wrong", None)
    # An unknown user is refused as a wrong password is (argon2 against no one, counted).
    assert check_password_lean(lean, "nobody", TEST_PASSWORD, source=source) == ("wrong", None)
    with pytest.raises(logins.BadLogin):
        logins.count_failed_login(engine, "maya", source=source)
    with read_session(engine) as session:  # counted as check_password counts it
        assert session.get(LoginFailure, ("maya", source)) is not None
    # A failure counted: the store checks (its delay, its turn), the lean reader does not.
    assert check_password_lean(lean, "maya", TEST_PASSWORD, source=source) == ("store", None)
    with transaction(engine) as session:
        directory.get_user(session, "omar").active = False
    assert check_password_lean(lean, "omar", TEST_PASSWORD, source=source) == ("wrong", None)


def test_the_language_and_zone_read_what_the_store_reads(engine: Engine) -> None:
    lean = lean_desk(seeded(engine))
    for language, zone in (("", ""), ("fr", "Asia/Tokyo"), ("ja", "Not/AZone")):
        with transaction(engine) as session:
            directory.set_setting(session, "language", language)
            directory.set_setting(session, "time_zone", zone)
        with read_session(engine) as session:
            maya = directory.get_user(session, "maya")
            expected = (spoken_language(session, maya), directory.desk_zone(session))
        row = check_password_lean(lean, "maya", TEST_PASSWORD, source=login_source())[1]
        assert row is not None
        assert lean.speech(row) == expected


def test_a_desk_the_lean_reader_cannot_read_is_left_to_the_store(
    engine: Engine, tmp_path: Path
) -> None:
    assert open_lean(f"sqlite:///{tmp_path / 'none.db'}") is None  # no file: not made here
    assert not (tmp_path / "none.db").exists()
    assert open_lean("sqlite://") is None  # in memory
    assert open_lean("mysql://localhost/desk") is None
    with transaction(engine) as session:  # an older schema: the store says "upgrade"
        session.connection().execute(text("UPDATE alembic_version SET version_num = '0001'"))
    assert open_lean(url_of(engine)) is None
    with transaction(engine) as session:
        session.connection().execute(
            text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()}
        )
    assert open_lean(url_of(engine)) is not None


def test_the_lean_reader_and_the_queues_screen_import_no_sqlalchemy() -> None:
    """What ``cxdesk run`` imports up to the queues' first fill: no SQLAlchemy, SQLModel or
    models (they load once the queues are drawn)."""
    loaded = modules_loaded_by(
        "import cxdesk.launch, cxdesk.app, cxdesk.screens.login, cxdesk.screens.queues\n"
        "import cxdesk.store.lean, cxdesk.desk_opening"
    )
    heavy = {"sqlalchemy", "sqlmodel", "cxdesk.store.models", "cxdesk.store.db", "alembic", "typer"}
    assert loaded & heavy == set()


def test_a_driver_error_in_a_lean_read_is_the_stores_error(tmp_path: Path) -> None:
    """A lean read failing in the driver raises the store's one-line ``DeskError``, raised
    from the driver's error: the database away is unreachable as the store's is, with or
    without SQLAlchemy loaded (``screens.background``). SQLite here (a file it cannot open);
    PostgreSQL stopped under a lean reader: ``test_tui_lean``."""
    from cxdesk.errors import DeskError
    from cxdesk.store.db import is_unreachable
    from cxdesk.store.lean import _sqlite_connection, driver_unreachable

    away = str(tmp_path / "gone" / "desk.db")
    desk = LeanDesk(lambda: _sqlite_connection(away), postgres=False)
    with pytest.raises(DeskError) as raised:
        desk.login("maya", "maya", login_source())
    assert str(raised.value) == "Database error: unable to open database file"
    assert is_unreachable(raised.value) and driver_unreachable(raised.value)


def test_the_language_read_lean_failing_is_one_warning_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A login's language and zone the driver cannot read (``tui_language.read_speech_lean``):
    one warning line, no traceback, and the language and zone it had."""
    from cxdesk.local_time import shown_zone
    from cxdesk.store.lean import LoginRow, _sqlite_connection
    from cxdesk.tui_language import Speaking

    away = str(tmp_path / "gone" / "desk.db")
    desk = LeanDesk(lambda: _sqlite_connection(away), postgres=False)
    speaking, zone = Speaking(), shown_zone()
    row = LoginRow(1, "maya", "Maya", "expert", "x", True, "fr")
    with caplog.at_level("WARNING", logger="cxdesk.tui_language"):
        speaking.read_speech_lean(desk, row)
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
        ("WARNING", "reading maya's language: Database error: unable to open database file", None)
    ]
    assert speaking.login_language is None and shown_zone() is zone
