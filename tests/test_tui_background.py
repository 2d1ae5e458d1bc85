"""Background work in the desk's screens (issue 18, item 6): one way, ``screens/background``.

- The code: nothing in the screens, widgets, the app or its mixins runs a worker, calls
  ``call_from_thread`` or asks for the current worker but ``cxdesk/screens/background.py``
  (an AST scan, so a new screen cannot slip back to ``@work``).
- The helper, on a small app of its own (real Textual, real threads; the jobs are the test's):
  a job that breaks shows one line (its traceback in the log, never on screen) and the screen
  goes on working; a read whose screen was closed applies nothing and says nothing; of two reads
  of one group, the newer wins even when the older finishes last; a poll slower than its
  interval is not cancelled by the next tick (``unless_running``); a write's failure is said
  even once its screen closed; a write asked for twice while it runs runs once, and a read of
  its group does not cancel it.
- The desk (SQLite and PostgreSQL): a read that fails on the real database (its table renamed
  away for the test) is one line, and the ticket list goes on filtering; Enter twice on the new
  ticket form while its save runs makes one ticket.

Every wait is on what the test checks, never a sleep.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import select
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input, Label, Select

import cxdesk
from cxdesk.app import CxDeskApp
from cxdesk.errors import DeskError
from cxdesk.screens import new_ticket
from cxdesk.screens.background import Background
from cxdesk.screens.ticket import TicketScreen
from cxdesk.store.db import read_session
from cxdesk.store.models import Ticket
from tests.desk import build_small_desk
from tests.test_tui import new_ticket_form
from tests.test_tui import run as run_tui
from tests.test_tui_views import desk, open_list, run_app, table_keys
from tests.test_views import build_ticket_desk
from tests.tui_helpers import choose, notices, notified, wait_until

PACKAGE = Path(cxdesk.__file__).parent
HELPER = PACKAGE / "screens" / "background.py"
FORBIDDEN = {"call_from_thread", "run_worker", "get_current_worker"}


def _scanned() -> list[Path]:
    """The screens, the widgets, and the app with its mixins (the package's top modules)."""
    return sorted(
        [
            *(PACKAGE / "screens").glob("*.py"),
            *(PACKAGE / "widgets").glob("*.py"),
            *PACKAGE.glob("*.py"),
        ]  # fmt: skip
    )


def _worker_code(path: Path) -> list[str]:
    """Where ``path`` runs background work its own way: ``@work``, or a forbidden name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                called = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(called, ast.Name | ast.Attribute) and (
                    getattr(called, "id", None) == "work" or getattr(called, "attr", None) == "work"
                ):
                    found.append(f"{path.name}:{node.lineno} @work on {node.name}")
        name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
        if isinstance(node, ast.Attribute | ast.Name) and name in FORBIDDEN:
            found.append(f"{path.name}:{node.lineno} {name}")
        if isinstance(node, ast.ImportFrom) and node.module == "textual":
            found += [f"{path.name}:{node.lineno} imports work" for a in node.names
                      if a.name == "work"]  # fmt: skip
    return found


def test_only_the_helper_runs_background_work() -> None:
    scanned = _scanned()
    assert HELPER in scanned and PACKAGE / "app.py" in scanned
    found = [line for path in scanned if path != HELPER for line in _worker_code(path)]
    assert found == [], "background work outside screens/background.py:\n" + "\n".join(found)
    assert _worker_code(HELPER)  # the scan sees what it looks for


# -- the helper on a small app ----------------------------------------------------------------


class JobScreen(Background, Screen[None]):
    """A screen that shows what its jobs gave (``applied``) in a Label."""

    def __init__(self) -> None:
        super().__init__()
        self.applied: list[str] = []

    def compose(self) -> ComposeResult:
        yield Label("", id="shown")
        yield Input(id="typed")

    def show(self, value: str) -> None:
        self.applied.append(value)
        self.query_one("#shown", Label).update(value)

    def run(self, job: Callable[[], str], group: str = "read") -> None:
        self.in_thread(job, self.show, group=group, reading=True)


class JobApp(Background, App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.shown: list[str] = []

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.shown.append(message)
        super().notify(message, *args, **kwargs)


def run_jobs(script: Callable[[JobApp, JobScreen, Pilot[None]], Any]) -> None:
    async def main() -> None:
        app = JobApp()
        async with app.run_test(size=(80, 24)) as pilot:
            screen = JobScreen()
            await app.push_screen(screen)
            await script(app, screen, pilot)

    asyncio.run(main())


class Gate:
    """A job that waits for ``open()`` (in a thread) and says when it has returned."""

    def __init__(self, value: str) -> None:
        self.value = value
        self._open = threading.Event()
        self.returned = threading.Event()

    def __call__(self) -> str:
        self._open.wait(60)
        self.returned.set()
        return self.value

    async def open_and_wait(self) -> None:
        self._open.set()
        await asyncio.to_thread(self.returned.wait, 60)


def broken() -> str:
    raise RuntimeError("the index went missing")


def test_a_job_that_breaks_shows_one_line_and_the_screen_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def script(app: JobApp, screen: JobScreen, pilot: Pilot[None]) -> None:
        with caplog.at_level(logging.ERROR, logger="cxdesk.screens.background"):
            screen.run(broken)
            await wait_until(pilot, lambda: app.shown, "the line")
        assert app.shown == ["Unexpected error (RuntimeError: the index went missing)"]
        logged = [r for r in caplog.records if r.exc_info]
        assert len(logged) == 1 and "the index went missing" in str(logged[0].exc_info)
        assert app.screen is screen and app.is_running and screen.applied == []
        await pilot.click("#typed")
        await pilot.press("o", "k")
        assert screen.query_one("#typed", Input).value == "ok"  # still answering keys
        screen.run(lambda: "read again")
        await wait_until(pilot, lambda: screen.applied == ["read again"], "the next read")
        assert len(app.shown) == 1

    run_jobs(script)


def test_a_job_whose_screen_was_closed_applies_and_says_nothing() -> None:
    async def script(app: JobApp, screen: JobScreen, pilot: Pilot[None]) -> None:
        slow, failing = Gate("too late"), Gate("")
        screen.run(slow, group="one")
        screen.in_thread(lambda: failing() + broken(), group="two", reading=True)
        app.pop_screen()
        await wait_until(pilot, lambda: not screen.is_attached, "the screen closed")
        await slow.open_and_wait()
        await failing.open_and_wait()
        await pilot.pause()  # anything the ends posted is handled by now
        assert screen.applied == [] and app.shown == []

    run_jobs(script)


def test_a_write_whose_screen_was_closed_still_says_its_failure() -> None:
    async def script(app: JobApp, screen: JobScreen, pilot: Pilot[None]) -> None:
        gate = Gate("")

        def save() -> str:
            gate()
            raise DeskError("TCK-7 is already closed")

        screen.in_thread(save, screen.show, group="ticket-close")
        app.pop_screen()  # Escape while the ticket is being closed
        await wait_until(pilot, lambda: not screen.is_attached, "the screen closed")
        await gate.open_and_wait()
        await wait_until(pilot, lambda: app.shown, "the failure said")
        assert app.shown == ["TCK-7 is already closed"] and screen.applied == []

    run_jobs(script)


def test_a_write_asked_for_twice_while_it_runs_runs_once() -> None:
    async def script(app: JobApp, screen: JobScreen, pilot: Pilot[None]) -> None:
        gate, runs = Gate("saved"), []

        def save() -> str:
            runs.append("save")
            return gate()

        assert screen.in_thread(save, screen.show, group="view") is not None
        assert screen.in_thread(save, screen.show, group="view") is None  # the second press
        screen.run(lambda: "views read", group="view")  # a read of its group: both go on
        await wait_until(pilot, lambda: screen.applied == ["views read"], "the read")
        await gate.open_and_wait()
        await wait_until(pilot, lambda: "saved" in screen.applied, "the write's outcome")
        assert runs == ["save"] and screen.applied == ["views read", "saved"]
        assert screen.in_thread(lambda: "again", screen.show, group="view")  # once it ended
        await wait_until(pilot, lambda: screen.applied[-1] == "again", "the next write")

    run_jobs(script)


def test_a_newer_read_of_a_group_wins_over_an_older_slow_one() -> None:
    async def script(app: JobApp, screen: JobScreen, pilot: Pilot[None]) -> None:
        older = Gate("filter: z")
        screen.run(older)
        screen.run(lambda: "filter: zoe")
        await wait_until(pilot, lambda: screen.applied == ["filter: zoe"], "the newer read")
        await older.open_and_wait()  # the older one ends last
        await pilot.pause()
        assert screen.applied == ["filter: zoe"] and app.shown == []
        assert str(screen.query_one("#shown", Label).render()) == "filter: zoe"

    run_jobs(script)


def test_a_poll_slower_than_its_interval_still_shows_its_read() -> None:
    async def script(app: JobApp, screen: JobScreen, pilot: Pilot[None]) -> None:
        slow = Gate("board")

        def poll() -> object:
            return screen.in_thread(slow, screen.show, group="poll", unless_running=True)

        assert poll() is not None
        assert poll() is None  # the next tick while it runs: nothing started, nothing cancelled
        await slow.open_and_wait()
        await wait_until(pilot, lambda: screen.applied == ["board"], "the slow read shown")

    run_jobs(script)


# -- the desk ---------------------------------------------------------------------------------


@pytest.fixture
def _no_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXDESK_DELIVER", "0")  # its "not configured" line is not the test's


@pytest.mark.usefixtures("_no_delivery")
def test_a_read_failing_on_the_database_is_one_line_and_the_list_goes_on(engine: Engine) -> None:
    k = build_ticket_desk(engine)
    away = "ALTER TABLE {} RENAME TO {}"  # the saved views' table gone under the desk, a while
    with engine.begin() as connection:
        connection.execute(text(away.format("saved_view", "saved_view_away")))

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_list(app, pilot)
        await pilot.press("w")  # recall a view: the read fails
        await wait_until(pilot, lambda: notices(app), "the line")
        assert len(notices(app)) == 1
        assert notices(app)[0].startswith("Database error: "), notices(app)
        assert "saved_view" in notices(app)[0] and "\n" not in notices(app)[0]
        assert app.screen is screen
        screen.query_one("#f-team", Input).value = "Stats iQ"
        screen.query_one("#f-team", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.flt.team == "Stats iQ", "the filter applied")
        assert table_keys(app, "#tickets") == [k["bob"]]
        assert len(notices(app)) == 1

    try:
        run_app(engine, desk("admin"), script)
    finally:  # the database is the next test's (PostgreSQL: one per worker, emptied)
        with engine.begin() as connection:
            connection.execute(text(away.format("saved_view_away", "saved_view")))


def test_enter_twice_on_the_new_ticket_form_makes_one_ticket(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_small_desk(engine)
    gate, create = threading.Event(), new_ticket.create_manual_ticket
    started = threading.Event()

    def slow_create(*args: Any, **kwargs: Any) -> str:
        started.set()
        gate.wait(60)
        return create(*args, **kwargs)

    monkeypatch.setattr(new_ticket, "create_manual_ticket", slow_create)

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        form = await new_ticket_form(app, pilot)
        form.query_one("#team", Select).focus()
        await choose(pilot, "Stats")
        form.query_one("#email", Input).value = "grace@example.com"
        comment = form.query_one("#comment", Input)
        comment.value = "Called about renewals"
        comment.focus()
        await pilot.press("enter")
        await asyncio.to_thread(started.wait, 60)
        await pilot.press("enter")  # again, while the first is saving
        gate.set()
        await wait_until(pilot, lambda: notified(app, "Created "), "the outcome")
        shown = app.screen
        await wait_until(
            pilot, lambda: isinstance(shown, TicketScreen) and shown.view, "the new ticket"
        )
        with read_session(engine) as session:
            tickets = session.exec(select(Ticket)).all()
        assert [t.customer_email for t in tickets] == ["grace@example.com"]

    run_tui(engine, "maya", script)
