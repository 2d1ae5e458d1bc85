"""The desk's home screens speak only catalog text (issue 17 items 1 and 5): check-in, queues,
a waiting list, the board, the kanban (and its move dialog), the new ticket form, campaigns
(and the confirm dialog), and Textual's own words the desk shows (the footer's palette key,
the command palette's prompt and system commands), run in the pseudo-language; and check-in in
Japanese, working as in English.

Every screen test runs on one desk (``_desk``: the small desk, one customer waiting, one
pulled) and one helper (``_speaks_only_catalog_text``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select
from textual.command import CommandInput, CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, OptionList, Select, Static

from cxdesk.app import CxDeskApp, create_app
from cxdesk.engine.dispatch import auto_assign_and_dispatch, unit_of_work
from cxdesk.i18n import use_language
from cxdesk.local_time import shown_zone, use_zone
from cxdesk.screens.board import BoardApp, BoardScreen
from cxdesk.screens.campaigns import CampaignsScreen
from cxdesk.screens.checkin import CheckinScreen
from cxdesk.screens.help import HelpScreen
from cxdesk.screens.kanban import KanbanScreen
from cxdesk.screens.new_ticket import NewTicketScreen
from cxdesk.screens.queues import QueuesScreen
from cxdesk.screens.waiting_list import WaitingListScreen
from cxdesk.store.db import read_session
from cxdesk.store.directory import get_user
from cxdesk.store.hall import hall_board
from cxdesk.store.models import Ticket
from cxdesk.store.surveys import submit_response
from cxdesk.widgets.change_dialog import ChangeDialog
from cxdesk.widgets.confirm_dialog import ConfirmDialog
from tests.desk import build_small_desk, pull
from tests.pseudo import outside_catalog, untranslated
from tests.test_campaigns import add_contacts
from tests.tui_helpers import drawn_text, log_in, run_app, wait_until

Script = Callable[[CxDeskApp, Pilot[Any]], Awaitable[None]]

DESK_DATA = [
    # the desk's own words (names, teams, queues, titles, the check-in survey's hints)
    "Stats iQ", "Solo", "Maya", "Omar", "Kenji", "Vera", "Admin", "cxdesk",
    "Ada Lovelace needs help with 360", "Grace Hopper needs help with Stats iQ",
    "Ada", "Grace", "Hopper", "Lovelace", "ada@example.com", "maya", "omar", "kenji",
    # the languages, each by its own name (the check-in's Language field)
    "English", "Français", "Italiano",
    "Follow up later", "admin",  # a status an admin added, a username
    "EXP", "Customer 00000", "Customer 00001", "customer00000@example.com",
    "customer00001@example.com", "Spring", "Hello", "plan=enterprise", "Campaign:",
    "esc", "shift",  # keys' names (keys are not translated)
]  # fmt: skip


def _check_in(engine: Engine, first: str, last: str, product: str) -> None:
    with unit_of_work(engine) as session:
        vera = get_user(session, "vera")
        answers = {"first_name": first, "last_name": last, "email": f"{first}@example.com",
                   "product": product}  # fmt: skip
        submit_response(session, actor=vera, survey_name="checkin", answers=answers)
    auto_assign_and_dispatch(engine)


def _desk(engine: Engine) -> None:
    """The small desk: Ada waits in 360, Grace (Stats iQ) was pulled by kenji."""
    build_small_desk(engine)
    _check_in(engine, "Ada", "Lovelace", "360")
    _check_in(engine, "Grace", "Hopper", "Stats iQ")
    pull(engine, "kenji", "Stats iQ")
    add_contacts(engine, 2)


def _speaks_only_catalog_text(
    engine: Engine, user: str, script: Script, *, size: tuple[int, int] = (160, 48)
) -> None:
    """Log ``user`` in on ``_desk``, run ``script`` (it opens a screen and waits for it to be
    drawn with its data), then check every word drawn is catalog text or desk data."""
    _desk(engine)

    async def run(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        await script(app, pilot)
        await pilot.pause()
        _only_catalog_text(app)

    run_app(engine, lambda e: create_app(e, user=user, poll_seconds=0.2), run, size=size)


def _only_catalog_text(app: Any) -> None:
    """Every word drawn is catalog text or desk data, and every bracketed text a catalog
    string (or desk data given to ``_``, as the check-in's questions are)."""
    drawn = drawn_text(app)
    assert untranslated(drawn, data=DESK_DATA) == []
    assert outside_catalog(drawn, data=[*DESK_DATA, "Username", "Product", "Notes"]) == []


def _drawn(app: Any, text: str) -> Callable[[], bool]:
    return lambda: text in drawn_text(app)


async def _palette_commands(app: Any, pilot: Pilot[Any], *listed: str) -> list[str]:
    """Open the command palette (its prompt drawn) and list every command it offers, once
    those ``listed`` are."""
    await pilot.press("ctrl+p")
    await wait_until(pilot, lambda: isinstance(app.focused, CommandInput), "the palette")
    assert isinstance(app.screen, CommandPalette)
    await wait_until(pilot, _drawn(app, "⟦Search for commands…⟧"), "its prompt")
    await pilot.press("down")  # every command listed, the app's and Textual's
    commands = app.screen.query_one(CommandList)

    def prompts() -> list[str]:
        return [str(commands.get_option_at_index(i).prompt) for i in range(commands.option_count)]

    await wait_until(pilot, lambda: all(any(t in p for p in prompts()) for t in listed), "them")
    return prompts()


def test_check_in_speaks_only_catalog_text(engine: Engine, pseudo_language: None) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: isinstance(app.screen, CheckinScreen), "check-in")
        await wait_until(pilot, _drawn(app, "⟦Notes"), "the form")

    _speaks_only_catalog_text(engine, "vera", script)


def test_queues_speak_only_catalog_text(engine: Engine, pseudo_language: None) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        mine = app.screen.query_one("#mine", DataTable)
        await wait_until(pilot, lambda: app.screen.query_one("#queues", DataTable).row_count,
                         "the queues' rows")  # fmt: skip
        await wait_until(pilot, lambda: mine.row_count == 0, "no ticket of mine")

    _speaks_only_catalog_text(engine, "maya", script)


def test_a_waiting_list_speaks_only_catalog_text(engine: Engine, pseudo_language: None) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        table = app.screen.query_one("#queues", DataTable)
        await wait_until(pilot, lambda: table.row_count > 1, "the queues' rows")
        await pilot.press("enter")  # the cursor starts on the first queue: 360
        await wait_until(pilot, lambda: isinstance(app.screen, WaitingListScreen), "the list")
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count, "Ada")

    _speaks_only_catalog_text(engine, "maya", script)


def test_the_board_speaks_only_catalog_text(engine: Engine, pseudo_language: None) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        app.navigate("Board")
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), "the board")

        def serving() -> bool:
            return any(t.row_count for t in app.screen.query("#board-serving").results(DataTable))

        await wait_until(pilot, serving, "Grace being served")
        await wait_until(pilot, _drawn(app, "⟦Updated"), "its clock")

    _speaks_only_catalog_text(engine, "maya", script)


def test_the_kanban_and_its_move_dialog_speak_only_catalog_text(
    engine: Engine, pseudo_language: None
) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        app.navigate("Kanban")
        await wait_until(pilot, lambda: isinstance(app.screen, KanbanScreen), "the kanban")
        await wait_until(pilot, lambda: app.screen.query(OptionList), "its columns")
        await wait_until(pilot, lambda: isinstance(app.focused, OptionList), "a column")
        _only_catalog_text(app)
        await pilot.press("shift+right")  # Ada's card, new -> open
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeDialog), "the dialog")

    _speaks_only_catalog_text(engine, "maya", script)


def test_the_new_ticket_form_speaks_only_catalog_text(
    engine: Engine, pseudo_language: None
) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: isinstance(app.screen, NewTicketScreen), "the form")
        await wait_until(pilot, lambda: app.screen.query_one("#team", Select)._options[1:],
                         "the teams")  # fmt: skip
        app.screen.query_one("#comment", Input).focus()
        await pilot.press("enter")  # nothing typed: the team is required
        await wait_until(pilot, lambda: str(app.screen.query_one("#err-team", Label).render()),
                         "the team's error")  # fmt: skip

    _speaks_only_catalog_text(engine, "maya", script)


def test_campaigns_and_the_confirm_dialog_speak_only_catalog_text(
    engine: Engine, pseudo_language: None
) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        app.navigate("Campaigns")
        await wait_until(pilot, lambda: isinstance(app.screen, CampaignsScreen), "campaigns")
        await wait_until(pilot, _drawn(app, "⟦Fill the form"), "the form")
        _only_catalog_text(app)
        screen = app.screen
        await wait_until(pilot, lambda: "360" in screen.choices.members_by_team, "the teams")
        for field, value in (("name", "Spring"), ("filters", "plan=enterprise"),
                             ("subject", "Hello")):  # fmt: skip
            screen.query_one(f"#{field}", Input).value = value
        screen.query_one("#team", Select).value = "360"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        assert "⟦Would create" in str(screen.query_one("#outcome", Label).render())

    _speaks_only_catalog_text(engine, "admin", script)


def test_the_command_palette_speaks_only_catalog_text(
    engine: Engine, pseudo_language: None
) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        await wait_until(pilot, _drawn(app, "⟦palette⟧"), "the footer's palette key")
        prompts = await _palette_commands(app, pilot, "⟦Quit⟧", "⟦Kanban⟧", "⟦Theme⟧")
        assert untranslated("\n".join(prompts), data=DESK_DATA) == []

    _speaks_only_catalog_text(engine, "maya", script)


def test_the_lone_board_and_its_palette_speak_only_catalog_text(
    engine: Engine, pseudo_language: None
) -> None:
    """``cxdesk board``: no login, the board and Textual's commands in the palette."""
    _desk(engine)

    async def script(app: BoardApp, pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: app.screen.query("#board-serving"), "the board")
        serving = app.screen.query_one("#board-serving", DataTable)
        await wait_until(pilot, lambda: serving.row_count, "Grace being served")
        await wait_until(pilot, _drawn(app, "⟦Quit⟧"), "the footer")
        _only_catalog_text(app)
        prompts = await _palette_commands(app, pilot, "⟦Quit⟧", "⟦Theme⟧", "⟦Keys⟧")
        assert untranslated("\n".join(prompts)) == []
        await pilot.press("escape")  # closes the palette
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), "the board again")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "its help")
        await wait_until(pilot, _drawn(app, "⟦Help: ⟦"), "the help drawn")
        _only_catalog_text(app)
        assert "⟦Quit⟧" in str(app.screen.query_one("#help-keys", Static).render())
        assert "⟦Escape or q closes the board." in drawn_text(app)  # not the desk's hint
        await pilot.press("escape")  # closes the help
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), "the board")
        assert app.is_running
        await pilot.press("escape")  # and leaves the board, as q does
        await wait_until(pilot, lambda: not app.is_running, "the board closed")

    run_app(engine, lambda e: BoardApp(e, poll_seconds=0.2), script, size=(120, 30))


@pytest.fixture
def far_east_zone() -> Any:
    use_zone("Pacific/Kiritimati")  # UTC+14: no machine's zone, so its times are the desk's
    yield
    use_zone(None)


@pytest.mark.usefixtures("far_east_zone")
def test_the_lone_board_shows_times_in_the_desks_zone(engine: Engine) -> None:
    """``cxdesk board`` sets the desk's zone (``speak_as``); the board's times follow it."""
    _desk(engine)
    with read_session(engine) as session:
        [grace] = hall_board(session, now=datetime.now(UTC)).serving
    shown = grace.since.astimezone(shown_zone()).strftime("%H:%M")

    async def script(app: BoardApp, pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: app.screen.query("#board-serving"), "the board")
        serving = app.screen.query_one("#board-serving", DataTable)
        await wait_until(pilot, lambda: serving.row_count, "Grace being served")
        assert str(serving.get_row_at(0)[-1]) == shown
        assert shown != grace.since.astimezone().strftime("%H:%M")  # not the machine's

    run_app(engine, lambda e: BoardApp(e, poll_seconds=0.2), script, size=(120, 30))


@pytest.fixture
def japanese() -> Any:
    use_language("ja")
    yield
    use_language(None)


def test_a_volunteer_checks_a_customer_in_in_japanese(engine: Engine, japanese: None) -> None:
    """The form's labels, the footer and the outcome in Japanese; the customer is checked in."""
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, CheckinScreen), "check-in")
        shown = ("名 *", "姓 *", "メール *", "選択…", "ヘルプ", "パレット")  # no ^n: a volunteer
        await wait_until(pilot, lambda: all(text in drawn_text(app) for text in shown),
                         "the form in Japanese")  # fmt: skip
        assert "First name" not in drawn_text(app)
        await pilot.press(*"太郎", "tab", *"山田", "tab", *"taro@example.com", "tab", "tab", "tab")
        assert app.focused is not None and app.focused.id == "q-product"
        await pilot.press("enter", *"360", "enter")
        product = app.screen.query_one("#q-product", Select)
        await wait_until(pilot, lambda: product.value == "360", "the product")
        await pilot.press("tab", *"ログインできない", "enter")
        status = app.screen.query_one("#checked-in", Label)
        await wait_until(pilot, lambda: "受付しました" in str(status.render()), "the check-in")
        assert str(status.render()) == "受付しました：EXP-1"
        with read_session(engine) as session:
            ticket = session.exec(select(Ticket)).one()
        assert (ticket.key, ticket.customer_email) == ("EXP-1", "taro@example.com")
        assert ticket.customer_name == "山田 太郎"  # family name first
        assert ticket.customer_comment == "ログインできない"

    run_app(engine, lambda e: create_app(e, user="vera", poll_seconds=0.2), script,
            size=(160, 48))  # fmt: skip
