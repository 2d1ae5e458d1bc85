"""``cxdesk run``'s desk opened lean (``cxdesk.desk_opening``): the login and the queues'
first fill read through the driver while the store loads behind them, SQLite and PostgreSQL.

The app is given a function opening the store (as ``cxdesk run`` does); a test that must act
before the store has loaded holds that function until it has acted."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlmodel import col, select
from textual.pilot import Pilot
from textual.widgets import Input

from cxdesk.app import CxDeskApp, create_app
from cxdesk.config import Settings
from cxdesk.screens.checkin import CheckinScreen
from cxdesk.screens.queues import PENDING, QueuesScreen, QueuesSnapshot
from cxdesk.screens.ticket import TicketScreen
from cxdesk.store import lean
from cxdesk.store import tickets as ops
from cxdesk.store.db import make_engine, read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.lean import LoginRow, login_source
from cxdesk.store.migrate import current_revision, upgrade
from cxdesk.store.models import Event, LoginFailure, User
from tests.cli_helpers import TEST_PASSWORD, table_counts
from tests.conftest import PgCluster
from tests.desk import build_small_desk
from tests.tui_helpers import drawn_text, log_in, notified, run_app, wait_until, with_login

SIZE = (120, 36)


def run_lean(
    engine: Engine,
    user: str,
    script: Callable[[CxDeskApp, Pilot[Any]], Any],
    *,
    hold: threading.Event | None = None,
    built: Callable[[Engine], object] | None = None,
) -> None:
    """Run ``script`` on an app opening its store lazily from ``engine``'s URL (``hold``: the
    store's opening waits for it; ``built`` is given the app's engine)."""
    url = engine.url.render_as_string(hide_password=False)

    def build(app_engine: Engine) -> CxDeskApp:
        def open_store() -> Engine:  # as ``cxdesk run``'s (``desk_engine``): it reads
            if hold is not None:
                hold.wait(60)
            current_revision(app_engine)
            return app_engine

        if built is not None:
            built(app_engine)

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


def test_the_engine_asked_on_the_ui_thread_before_the_store_has_started(
    engine: Engine, shown: list[QueuesSnapshot]
) -> None:
    """``engine`` on the UI thread (a board's or a ticket's own read of it) while the store
    has not started loading: it loads there and then (a Textual worker would start only once
    the event loop ran again, which the wait blocked: the app hung)."""
    build_small_desk(engine)
    seen: list[object] = []

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await wait_until(pilot, app._lean_tried.is_set, "the lean reader")
        seen.append(app.store_loaded)
        seen.append(app.engine.url.render_as_string(hide_password=False))
        seen.append(app.store_loaded)
        await log_in(app, pilot)
        await wait_until(pilot, lambda: shown and shown[-1].complete, "every column")

    run_lean(engine, "maya", script)
    assert seen == [False, engine.url.render_as_string(hide_password=False), True]


def traced_statements(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[str], Callable[[Engine], None]]:
    """Every statement the app runs (its lean reads through the driver, its store's through
    SQLAlchemy) and each connection opened (``connect``), in order; the function to give
    ``run_lean``'s ``built``."""
    found: list[str] = []

    class Traced:
        def __init__(self, connection: Any) -> None:
            self.connection = connection
            found.append("connect")

        def execute(self, sql: str, parameters: Any = ()) -> Any:
            found.append(sql)
            return self.connection.execute(sql, parameters)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.connection, name)

    for name in ("_sqlite_connection", "_postgres_connection"):
        opened = getattr(lean, name)
        monkeypatch.setattr(lean, name, lambda *a, opened=opened: Traced(opened(*a)))

    def built(app_engine: Engine) -> None:
        event.listen(app_engine, "connect", lambda *_: found.append("connect"))
        event.listen(app_engine, "before_cursor_execute", lambda *a: found.append(str(a[2])))

    return found, built


def test_every_refused_login_does_the_same_database_work(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown user, a deactivated one and a wrong password (first attempts): the same
    statements on the same connections, so the work done does not tell which (argon2 runs
    once in each). Each refusal is counted."""
    build_small_desk(engine)
    with transaction(engine) as session:
        get_user(session, "omar").active = False
    runs: dict[str, list[str]] = {}
    found, built = traced_statements(monkeypatch)
    for username, password in (("nobody", TEST_PASSWORD), ("omar", TEST_PASSWORD),
                               ("maya", "wrong")):  # fmt: skip
        found.clear()

        async def script(app: CxDeskApp, pilot: Pilot[Any], password: str = password) -> None:
            await wait_until(pilot, lambda: isinstance(app.focused, Input), "the login form")
            await pilot.press(*password, "enter")
            await wait_until(pilot, lambda: "Unknown user" in drawn_text(app), "the refusal")

        run_lean(engine, username, script, built=built)
        runs[username] = list(found)
    assert runs["nobody"] == runs["omar"] == runs["maya"]
    with read_session(engine) as session:
        counted = {name: session.get(LoginFailure, (name, login_source())) for name in runs}
    assert all(failure is not None and failure.failures == 1 for failure in counted.values())


@pytest.mark.slow
def test_the_database_away_at_a_lean_login_is_said_and_then_logged_in(
    own_pg_cluster: PgCluster,
) -> None:
    """PostgreSQL stopped once the lean reader has opened: the login says the store's one
    line ("Database error: ...", not an unexpected error), the store loads all the same and
    the app goes on (it ended); the server back, Enter logs in."""
    engine = make_engine(own_pg_cluster.url)
    try:
        upgrade(engine)
        build_small_desk(engine)
        seen: dict[str, object] = {}

        async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
            await wait_until(pilot, lambda: isinstance(app.focused, Input), "the login form")
            await wait_until(pilot, app._lean_tried.is_set, "the lean reader")
            seen["lean"] = app._lean is not None
            await asyncio.to_thread(own_pg_cluster.stop)
            await pilot.press(*TEST_PASSWORD, "enter")
            await wait_until(pilot, lambda: notified(app, "Database error"), "the line")
            await wait_until(pilot, lambda: app.store_loaded, "the store")
            seen["unexpected"] = notified(app, "Unexpected")
            seen["running"] = app.return_code is None
            await asyncio.to_thread(own_pg_cluster.start)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.user, User), "the login")
            await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")

        run_lean(engine, "maya", script)
        assert seen == {"lean": True, "unexpected": False, "running": True}
    finally:
        engine.dispose()


class ThenOnce:
    """The app's ``_arrival`` lock, running ``then`` once as a thread other than the UI's
    first releases it (the store's loading, before anyone logged in)."""

    def __init__(self, lock: Any, then: Callable[[], object], ui_thread: int) -> None:
        self.lock, self.then, self.ui_thread = lock, then, ui_thread
        self.done = False

    def __enter__(self) -> None:
        self.lock.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.lock.release()
        if not self.done and threading.get_ident() != self.ui_thread:
            self.done = True
            self.then()


def test_a_lean_login_as_the_store_finishes_loading_still_arrives(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's loading finds nobody logged in, and a lean login comes right after (before
    the store is marked loaded, as the race had it): the login still gets the store's User
    (the loading marks itself loaded in the same hold of the lock as it looks)."""
    build_small_desk(engine)
    users: list[object] = []

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await wait_until(pilot, app._lean_tried.is_set, "the lean reader")
        desk = app._lean
        assert desk is not None
        row = desk.login("maya", "maya", None)[1]
        app._arrival = ThenOnce(  # type: ignore[assignment]
            app._arrival, lambda: app.call_from_thread(app.set_user, row), app._thread_id
        )
        app.load_store()
        await wait_until(pilot, lambda: app.user is not None, "the login")
        await wait_until(pilot, lambda: isinstance(app.user, User), "the store's User")
        users.append(app.user)

    run_lean(engine, "maya", script)
    assert [getattr(user, "username", None) for user in users] == ["maya"]
