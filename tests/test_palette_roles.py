"""What the palette and the footers offer each role (a volunteer sees only what a volunteer can
use; an expert no admin-only action), the palette opening a ticket by its key, and
``cxdesk --user NAME`` opening the desk as ``cxdesk run --user NAME`` does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine
from textual.command import CommandInput, CommandList, CommandPalette
from textual.pilot import Pilot

from cxdesk.app import CxDeskApp
from cxdesk.screens.board import BoardScreen
from cxdesk.screens.checkin import CheckinScreen
from cxdesk.screens.history import HistoryScreen
from cxdesk.screens.queues import QueuesScreen
from cxdesk.screens.ticket import TicketScreen
from tests.desk import build_small_desk
from tests.test_help_and_escape import SIZE, add_ticket, desk, help_for, logged_in, on
from tests.tui_helpers import palette, run_app, wait_until

SCREENS = {"Queues", "Tickets", "Kanban", "Stream", "History", "Board", "Insights",
           "Campaigns", "Check-in", "New ticket", "Log out"}  # fmt: skip
OFFERED = {
    "vera": {"Queues", "Board", "Check-in", "Log out"},
    "maya": SCREENS - {"Insights", "Campaigns"},
    "admin": SCREENS,
}


@pytest.fixture(autouse=True)
def _no_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXDESK_DELIVER", "0")


async def open_palette(app: CxDeskApp, pilot: Pilot[Any]) -> CommandList:
    await pilot.press("ctrl+p")
    await wait_until(
        pilot,
        lambda: isinstance(app.screen, CommandPalette) and isinstance(app.focused, CommandInput),
        "the palette",
    )
    return app.screen.query_one(CommandList)


def prompts(commands: CommandList) -> set[str]:
    found = (commands.get_option_at_index(i) for i in range(commands.option_count))
    return {str(option.prompt).split("\n")[0] for option in found}


@pytest.mark.parametrize("user", sorted(OFFERED))
def test_the_palette_lists_what_the_role_can_use(engine: Engine, user: str) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        home = CheckinScreen if user == "vera" else QueuesScreen
        await logged_in(app, pilot, home)
        commands = await open_palette(app, pilot)
        await wait_until(pilot, lambda: "Log out" in prompts(commands), "the commands")
        assert prompts(commands) & SCREENS == OFFERED[user]
        await pilot.press("escape")
        await wait_until(pilot, on(app, home), "the palette closed")
        footer_keys = {binding.action for _k, binding, *_r in app.screen.active_bindings.values()}
        assert ("new_ticket" in footer_keys) == (user != "vera")

    run_app(engine, desk(user), script, size=SIZE)


@pytest.mark.parametrize("user", ["maya", "admin"])
def test_only_an_admin_is_offered_the_organisations_tickets(engine: Engine, user: str) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await logged_in(app, pilot, QueuesScreen)
        await palette(pilot, "History")
        await wait_until(pilot, on(app, HistoryScreen), "the history")
        drawn = await help_for(app, pilot, "f1")
        assert ("My tickets / organisation" in drawn) == (user == "admin")

    run_app(engine, desk(user), script, size=SIZE)


def test_the_palette_opens_a_ticket_by_its_key(engine: Engine) -> None:
    build_small_desk(engine)
    add_ticket(engine, "Printer on fire")
    key = add_ticket(engine, "Export fails")
    assert key == "EXP-2"

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await logged_in(app, pilot, QueuesScreen)
        await palette(pilot, "exp-2")  # any case; the first match is the ticket
        await wait_until(pilot, on(app, TicketScreen), "the ticket")
        assert app.screen.key == "EXP-2"  # type: ignore[attr-defined]
        await pilot.press("escape")
        await wait_until(pilot, on(app, QueuesScreen), "back from the ticket")

    run_app(engine, desk("maya"), script, size=SIZE)


def test_the_palette_offers_the_ticket_with_its_title(engine: Engine) -> None:
    build_small_desk(engine)
    add_ticket(engine, "Export fails")

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await logged_in(app, pilot, QueuesScreen)
        commands = await open_palette(app, pilot)
        await pilot.press(*"Exp-1")
        await wait_until(pilot, lambda: "Open EXP-1 — Export fails" in prompts(commands), "it")

    run_app(engine, desk("maya"), script, size=SIZE)


def test_a_volunteers_palette_opens_no_ticket(engine: Engine) -> None:
    build_small_desk(engine)
    add_ticket(engine, "Export fails")

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await logged_in(app, pilot, CheckinScreen)
        commands = await open_palette(app, pilot)
        await pilot.press(*"EXP-1")

        def searched() -> bool:  # the search ended with nothing: "No matches found"
            first = commands.get_option_at_index(0) if commands.option_count else None
            return first is not None and first.id == CommandPalette._NO_MATCHES

        await wait_until(pilot, searched, "the search to find nothing")

    run_app(engine, desk("vera"), script, size=SIZE)


def test_a_volunteer_walks_their_screens_and_escape_brings_them_home(engine: Engine) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await logged_in(app, pilot, CheckinScreen)
        for name, kind in (("Queues", QueuesScreen), ("Board", BoardScreen)):
            await palette(pilot, name)
            await wait_until(pilot, on(app, kind), name)
            drawn = await help_for(app, pilot, "question_mark")
            assert f"Help: {name}" in drawn
            assert "Pull next" not in drawn and "New ticket" not in drawn  # not a volunteer's
            await pilot.press("escape")
            await wait_until(pilot, on(app, CheckinScreen), f"home from {name}")

    run_app(engine, desk("vera"), script, size=SIZE)
