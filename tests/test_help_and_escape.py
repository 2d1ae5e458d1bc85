"""The desk explains itself (issue 17 item 6): ``?`` and F1 open help for the screen on top,
Escape goes back on every screen the palette reaches, empty lists say so, and ctrl+q over a
half-typed form asks first. Keys typed with Pilot, as a person would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input

from cxdesk.app import CxDeskApp, create_app
from cxdesk.i18n import use_language
from cxdesk.screens.board import BoardScreen
from cxdesk.screens.campaigns import CampaignsScreen
from cxdesk.screens.checkin import CheckinScreen
from cxdesk.screens.help import HelpScreen, key_lines
from cxdesk.screens.history import HistoryScreen
from cxdesk.screens.insights import InsightsScreen
from cxdesk.screens.kanban import KanbanScreen
from cxdesk.screens.new_ticket import NewTicketScreen
from cxdesk.screens.queues import QueuesScreen
from cxdesk.screens.stream import StreamScreen
from cxdesk.screens.tickets import TicketsScreen
from cxdesk.screens.waiting_list import WaitingListScreen
from cxdesk.store import tickets as ops
from cxdesk.store.db import transaction
from cxdesk.widgets.confirm_dialog import ConfirmDialog
from tests.desk import build_small_desk
from tests.pseudo import pseudo_language, untranslated  # noqa: F401 (a fixture)
from tests.tui_helpers import drawn_text, log_in, notified, palette, run_app, wait_until

SIZE = (160, 48)
SCREENS: dict[str, type[Screen[Any]]] = {
    "Tickets": TicketsScreen,
    "Kanban": KanbanScreen,
    "Stream": StreamScreen,
    "History": HistoryScreen,
    "Board": BoardScreen,
    "Insights": InsightsScreen,
    "Campaigns": CampaignsScreen,
    "Check-in": CheckinScreen,
}
"""Every screen the palette opens in place of the queues (an admin reaches them all)."""
HOME_HINT = "This is your home screen"


@pytest.fixture(autouse=True)
def _no_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXDESK_DELIVER", "0")


def desk(user: str) -> Callable[[Engine], CxDeskApp]:
    return lambda engine: create_app(engine, user=user, poll_seconds=0.2)


def add_ticket(engine: Engine, title: str, team: str = "360") -> str:
    with transaction(engine) as s:
        return ops.create_ticket(s, actor=None, draft=ops.TicketDraft(title=title, team=team)).key


def on(app: CxDeskApp, kind: type[Screen[Any]]) -> Callable[[], bool]:
    return lambda: isinstance(app.screen, kind)


async def logged_in(app: CxDeskApp, pilot: Pilot[Any], home: type[Screen[Any]]) -> None:
    """Log in (the username preselected) and wait for the role's home screen."""
    await log_in(app, pilot)
    await wait_until(pilot, on(app, home), home.__name__)


async def check_in_field(app: CxDeskApp, pilot: Pilot[Any]) -> Input:
    """Log in as a volunteer; the check-in form's first field, focused."""
    await logged_in(app, pilot, CheckinScreen)
    await wait_until(pilot, lambda: isinstance(app.focused, Input), "its first field")
    assert isinstance(app.focused, Input)
    return app.focused


async def help_for(app: CxDeskApp, pilot: Pilot[Any], key: str) -> str:
    """Press ``key``, wait for the help, and return what it draws."""
    below = app.screen
    await pilot.press(key)
    await wait_until(pilot, on(app, HelpScreen), f"the help after {key}")
    await wait_until(pilot, lambda: "Escape closes this help" in drawn_text(app), "its text")
    drawn = drawn_text(app)
    await pilot.press("escape")
    await wait_until(pilot, lambda: app.screen is below, "the help closed")
    return drawn


def test_every_screen_has_help_and_escape_goes_back(engine: Engine) -> None:
    build_small_desk(engine)
    add_ticket(engine, "Export fails")

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await logged_in(app, pilot, QueuesScreen)
        drawn = await help_for(app, pilot, "question_mark")
        assert "Help: Queues" in drawn and "Pull next" in drawn
        await pilot.press("escape")  # home: nothing to go back to, a hint
        await wait_until(pilot, lambda: notified(app, HOME_HINT), "the home hint")
        assert isinstance(app.screen, QueuesScreen)
        for name, kind in SCREENS.items():
            await palette(pilot, name)
            await wait_until(pilot, on(app, kind), name)
            drawn = await help_for(app, pilot, "f1")
            assert f"Help: {name}" in drawn, name
            await pilot.press("escape")
            await wait_until(pilot, on(app, QueuesScreen), f"back from {name}")
        # Screens opened over another close: the waiting list, a ticket, the new-ticket form.
        await pilot.press("enter")
        await wait_until(pilot, on(app, WaitingListScreen), "the waiting list")
        await pilot.press("escape")
        await wait_until(pilot, on(app, QueuesScreen), "back from the waiting list")
        await pilot.press("ctrl+n")
        await wait_until(pilot, on(app, NewTicketScreen), "the new-ticket form")
        await pilot.press("escape")
        await wait_until(pilot, on(app, QueuesScreen), "back from the form")

    run_app(engine, desk("admin"), script, size=SIZE)


def test_escape_goes_back_the_way_one_came(engine: Engine) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await logged_in(app, pilot, QueuesScreen)
        for name in ("Tickets", "Kanban", "Board"):
            await palette(pilot, name)
            await wait_until(pilot, on(app, SCREENS[name]), name)
        for kind in (KanbanScreen, TicketsScreen):
            await pilot.press("escape")
            await wait_until(pilot, on(app, kind), kind.__name__)
        await pilot.press("slash")  # the filter field: Escape first gives the list its focus
        await wait_until(pilot, lambda: isinstance(app.focused, Input), "the filter")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.focused, Input), "the list again")
        assert isinstance(app.screen, TicketsScreen)
        await pilot.press("escape")
        await wait_until(pilot, on(app, QueuesScreen), "the queues again")

    run_app(engine, desk("maya"), script, size=SIZE)


def test_question_mark_is_typed_in_a_field_and_f1_opens_help(engine: Engine) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        field = await check_in_field(app, pilot)
        await pilot.press("A", "d", "a", "question_mark")
        await wait_until(pilot, lambda: field.value == "Ada?", "the question mark typed")
        drawn = await help_for(app, pilot, "f1")
        assert "Help: Check-in" in drawn
        assert "New ticket" not in drawn  # a volunteer's keys only
        assert field.value == "Ada?" and app.focused is field
        await pilot.press("escape")  # a volunteer's home: a hint, the form stays
        await wait_until(pilot, lambda: notified(app, HOME_HINT), "the home hint")
        assert isinstance(app.screen, CheckinScreen) and field.value == "Ada?"

    run_app(engine, desk("vera"), script, size=SIZE)


def test_empty_lists_say_so(engine: Engine) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await logged_in(app, pilot, QueuesScreen)
        await wait_until(pilot, lambda: "No open tickets of yours" in drawn_text(app), "mine")
        await pilot.press("enter")
        await wait_until(pilot, on(app, WaitingListScreen), "the waiting list")
        await wait_until(
            pilot, lambda: "No tickets in this queue" in drawn_text(app), "an empty queue"
        )
        key = add_ticket(engine, "Export fails")  # another terminal checks someone in
        await wait_until(pilot, lambda: key in drawn_text(app), "the ticket, listed")
        assert "No tickets in this queue" not in drawn_text(app)

    run_app(engine, desk("maya"), script, size=SIZE)


def test_ctrl_q_asks_before_leaving_a_half_typed_form(engine: Engine) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await check_in_field(app, pilot)
        await pilot.press("A", "d", "a")
        await pilot.press("ctrl+q")
        await wait_until(pilot, on(app, ConfirmDialog), "the question")
        assert "Leave without saving?" in drawn_text(app)
        await pilot.press("escape")  # stay: the text is still there
        await wait_until(pilot, on(app, CheckinScreen), "the form again")
        assert app.return_code is None
        assert app.screen.query_one("#q-first_name", Input).value == "Ada"
        await pilot.press("ctrl+q")
        await wait_until(pilot, on(app, ConfirmDialog), "the question again")
        await pilot.press("y")
        await wait_until(pilot, lambda: app.return_code == 0, "the app quitting")

    run_app(engine, desk("vera"), script, size=SIZE)


def test_escape_from_a_half_typed_check_in_asks_first(engine: Engine) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await logged_in(app, pilot, QueuesScreen)
        await palette(pilot, "Check-in")
        await wait_until(pilot, lambda: isinstance(app.focused, Input), "the check-in form")
        await pilot.press("A", "d", "a", "escape")
        await wait_until(pilot, on(app, ConfirmDialog), "the question")
        await pilot.press("n")
        await wait_until(pilot, on(app, CheckinScreen), "the form again")
        assert app.screen.query_one("#q-first_name", Input).value == "Ada"
        await pilot.press("escape")
        await wait_until(pilot, on(app, ConfirmDialog), "the question again")
        await pilot.press("y")
        await wait_until(pilot, on(app, QueuesScreen), "back to the queues")

    run_app(engine, desk("maya"), script, size=SIZE)


def test_ctrl_q_with_nothing_typed_quits_at_once(engine: Engine) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await check_in_field(app, pilot)
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: app.return_code == 0, "the app quitting")
        assert not isinstance(app.screen, ConfirmDialog)

    run_app(engine, desk("vera"), script, size=SIZE)


def test_help_speaks_only_catalog_text(engine: Engine, pseudo_language: None) -> None:  # noqa: F811
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await logged_in(app, pilot, QueuesScreen)
        await pilot.press("f1")
        await wait_until(pilot, on(app, HelpScreen), "the help")
        await wait_until(pilot, lambda: "⟦Escape closes this help⟧" in drawn_text(app), "it")
        help_box = app.screen.query_one("#help")
        box = help_box.region
        drawn = " ".join(  # the help's lines as one (a paragraph wraps)
            line[box.x + 1 : box.right - 1].strip()
            for line in drawn_text(app).splitlines()[box.y : box.bottom]
        )
        keys = [key for key, _what in key_lines(app.screen_stack[-2])]
        assert untranslated(drawn, data=keys) == []

    run_app(engine, desk("maya"), script, size=SIZE)


@pytest.fixture
def japanese() -> Iterator[None]:
    use_language("ja")
    try:
        yield
    finally:
        use_language(None)


def test_help_and_empty_lists_in_japanese(engine: Engine, japanese: None) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await logged_in(app, pilot, QueuesScreen)
        await wait_until(pilot, lambda: "担当中のチケットはありません" in drawn_text(app), "mine")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: "ヘルプ：キュー" in drawn_text(app), "the help")
        assert "Escape でヘルプを閉じます" in drawn_text(app)

    run_app(engine, desk("maya"), script, size=SIZE)
