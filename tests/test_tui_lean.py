"""``cxdesk run``'s desk opened lean (``cxdesk.desk_opening``): the login and the queues'
first fill read through the driver while the store loads behind them, SQLite and PostgreSQL.

The app is given a function opening the store (as ``cxdesk run`` does); a test that must act
before the store has loaded holds that function until it has acted."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select
from textual.pilot import Pilot

from cxdesk.app import CxDeskApp, create_app
from cxdesk.config import Settings
from cxdesk.screens.checkin import CheckinScreen
from cxdesk.screens.queues import PENDING, QueuesScreen, QueuesSnapshot
from cxdesk.screens.ticket import TicketScreen
from cxdesk.store import tickets as ops
from cxdesk.store.db import read_session, transaction
from cxdesk.store.lean import LoginRow, login_source
from cxdesk.store.models import Event, LoginFailure, User
from tests.cli_helpers import table_counts
from tests.desk import build_small_desk
from tests.tui_helpers import drawn_text, log_in, run_app, wait_until, with_login

SIZE = (120, 36)


def run_lean(
    engine: Engine,
    user: str,
    script: Callable[[CxDeskApp, Pilot[Any]], Any],
    *,
    hold: threading.Event | None = None,
) -> None:
    """Run ``script`` on an app opening its store lazily from ``engine``'s URL (``hold``: the
    store's opening waits for it)."""
    url = engine.url.render_as_string(hide_password=False)

    def build(app_engine: Engine) -> CxDeskApp:
        def open_store() -> Engine:
            if hold is not None:
                hold.wait(60)
            return app_engine

        return create_app(
            open_store, user=user, settings=Settings(database_url=url), deliver=False,
            poll_seconds=0.2,
        )  # fmt: skip

    run_app(engine, build, script, size=SIZE)


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[QueuesSnapshot]:
    """Every snapshot a queues screen has drawn, in order."""
    found: list[QueuesSnapshot] = []
    show = QueuesScreen._show

    def recorded(screen: QueuesScreen, snapshot: QueuesSnapshot) -> None:
        show(screen, snapshot)
        found.append(snapshot)

    monkeypatch.setattr(QueuesScreen, "_show", recorded)
    return found


def test_the_queues_fill_lean_first_then_every_column(
    engine: Engine, shown: list[QueuesSnapshot]
) -> None:
    build_small_desk(engine)
    before = table_counts(engine)
    seen: dict[str, Any] = {}
    hold = threading.Event()

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        await wait_until(pilot, lambda: shown, "the first fill")
        seen["first user"] = app.user
        seen["first text"] = drawn_text(app)
        seen["loaded at first fill"] = app.store_loaded
        seen["counts at first fill"] = table_counts(engine)
        hold.set()
        await wait_until(pilot, lambda: shown[-1].complete, "every column")
        await wait_until(pilot, lambda: isinstance(app.user, User), "the store's user")
        seen["last text"] = drawn_text(app)

    run_lean(engine, "maya", script, hold=hold)
    first, last = shown[0], shown[-1]
    assert not first.complete and not seen["loaded at first fill"]
    assert isinstance(seen["first user"], LoginRow)
    assert (first.queues, first.my_teams, first.my_tickets) == (
        last.queues, last.my_teams, last.my_tickets
    )  # fmt: skip
    assert PENDING in seen["first text"] and "Any of my teams" in seen["first text"]
    assert PENDING not in seen["last text"]
    # The arrival (presence and its log line) is the store's: written once it has loaded.
    assert seen["counts at first fill"] == before
    assert table_counts(engine) == with_login(before)


def test_a_pull_pressed_before_the_store_has_loaded_waits_for_it(
    engine: Engine, shown: list[QueuesSnapshot]
) -> None:
    """``n`` at the first fill: the pull runs once the store has loaded, after the expert's
    arrival (their presence written first, as a login through the store does)."""
    build_small_desk(engine)
    with transaction(engine) as session:
        draft = ops.TicketDraft(title="Cannot export", team="360")
        key = ops.create_ticket(session, actor=None, draft=draft).key
    hold = threading.Event()
    opened: list[str] = []

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        await wait_until(pilot, lambda: shown, "the first fill")
        assert not app.store_loaded
        await pilot.press("n")
        hold.set()
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the pulled ticket")
        ticket = app.screen
        assert isinstance(ticket, TicketScreen)
        await wait_until(pilot, lambda: ticket.view is not None, "the ticket's fields")
        opened.append(ticket.key)

    run_lean(engine, "maya", script, hold=hold)
    assert opened == [key]
    with read_session(engine) as session:
        kinds = session.exec(select(Event.kind).order_by(col(Event.id))).all()
    assert kinds.index("user.presence_changed") < kinds.index("ticket.assigned_from_queue")


def test_a_wrong_password_read_lean_is_counted_by_the_store(
    engine: Engine, shown: list[QueuesSnapshot]
) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: app.focused is not None, "the login form")
        await pilot.press(*"wrong", "enter")
        await wait_until(pilot, lambda: "Unknown user" in drawn_text(app), "the refusal")

    run_lean(engine, "maya", script)
    with read_session(engine) as session:
        failure = session.get(LoginFailure, ("maya", login_source()))
    assert failure is not None and failure.failures == 1
    assert shown == []


def test_a_volunteer_logged_in_lean_gets_the_store_at_once(
    engine: Engine, shown: list[QueuesSnapshot]
) -> None:
    """A volunteer's home (check-in) reads through the store: it loads at their login (the
    lean row replaced by the store's User), and their login writes nothing (a volunteer has
    no presence)."""
    build_small_desk(engine)
    before = table_counts(engine)
    users: list[object] = []

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        users.append(app.user)
        await wait_until(pilot, lambda: isinstance(app.user, User), "the store's user")
        await wait_until(pilot, lambda: isinstance(app.screen, CheckinScreen), "check-in")

    run_lean(engine, "vera", script)
    assert [getattr(user, "role", None) for user in users] == ["volunteer"]
    assert shown == []
    assert table_counts(engine) == before


def test_quitting_before_the_store_has_loaded_writes_no_presence(
    engine: Engine, shown: list[QueuesSnapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quit at the first fill: the arrival was never written, so "away" is not written
    either (which would wait for the store to load, up to the quit's 5 s)."""
    away: list[object] = []
    monkeypatch.setattr(CxDeskApp, "_write_away", lambda _app, user: away.append(user))
    build_small_desk(engine)
    before = table_counts(engine)
    hold = threading.Event()
    loaded: list[bool] = []

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        await wait_until(pilot, lambda: shown, "the first fill")
        await app.action_quit()
        loaded.append(app.store_loaded)
        hold.set()

    run_lean(engine, "maya", script, hold=hold)
    assert loaded == [False] and away == []
    assert table_counts(engine) == before
