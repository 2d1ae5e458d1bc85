"""Snapshots of the main screens at 80x24 (the smallest terminal the desk supports) and 160x48,
in English and Japanese: login, check-in, queues, ticket, ticket list, kanban, board.

The desk is the fixed one of ``tests/test_tui_snapshots.py`` (fixed times, the app's clock fixed
at ``NOW``, local zone UTC); every screen is snapped once its data is drawn (rows, cards, the
ticket's fields), with input cursors still. Japanese at 80x24 only, where wide words matter
(at 160x48 everything fits): 21 pictures. After a deliberate change of a screen, or once the
screens' Japanese catalogs changed:

    .venv/bin/pytest tests/test_tui_small_snapshots.py -n0 --snapshot-update

then look at the SVGs (``snapshot_report.html``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, Static

from cxdesk.app import CxDeskApp
from cxdesk.i18n import use_language
from cxdesk.screens.board import BoardScreen
from cxdesk.screens.checkin import CheckinScreen
from cxdesk.screens.kanban import KanbanScreen
from cxdesk.screens.ticket import TicketScreen
from cxdesk.screens.tickets import TicketsScreen
from cxdesk.widgets.conversation import Conversation
from tests.test_tui_snapshots import (  # noqa: F401 (desk and _utc_local_time are fixtures)
    SnapCompare,
    _utc_local_time,
    desk,
    desk_app,
    log_in,
    queues_shown,
    still_cursors,
)
from tests.tui_helpers import drawn_text, wait_until

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}
Script = Callable[[Pilot[Any]], Awaitable[None]]


@pytest.fixture
def language(request: pytest.FixtureRequest) -> Iterator[str]:
    """The process speaks the test's language (English again after it)."""
    use_language(request.param)
    try:
        yield request.param
    finally:
        use_language(None)


async def drawn(pilot: Pilot[Any], *texts: str) -> None:
    """Wait until the screen draws every one of ``texts`` (desk data: never translated)."""
    app = pilot.app
    await wait_until(pilot, lambda: all(t in drawn_text(app) for t in texts), f"{texts} drawn")


async def logged_in(pilot: Pilot[Any]) -> CxDeskApp:
    app = pilot.app
    assert isinstance(app, CxDeskApp)
    await log_in(pilot)
    await wait_until(pilot, lambda: app.user is not None, "the login")
    return app


async def login(pilot: Pilot[Any]) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.focused, Input), "the login form")


async def checkin(pilot: Pilot[Any]) -> None:
    app = await logged_in(pilot)
    await wait_until(pilot, lambda: isinstance(app.screen, CheckinScreen), "check-in")
    await wait_until(
        pilot, lambda: app.focused is not None and app.focused.id == "q-first_name", "the form"
    )


async def queues(pilot: Pilot[Any]) -> None:
    await logged_in(pilot)
    await queues_shown(pilot)


async def ticket(pilot: Pilot[Any]) -> None:
    app = await logged_in(pilot)
    await queues_shown(pilot)
    await pilot.press("tab", "enter")  # to my open tickets, open the one there
    await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the ticket")
    screen = app.screen
    assert isinstance(screen, TicketScreen)
    await wait_until(pilot, lambda: screen.view is not None, "the ticket's fields")
    conversation = screen.query_one(Conversation)
    await wait_until(pilot, lambda: conversation.query(Static), "the conversation drawn")
    await drawn(pilot, "Ada Lovelace needs help")


async def tickets(pilot: Pilot[Any]) -> None:
    app = await logged_in(pilot)
    app.navigate("Tickets")
    await wait_until(
        pilot,
        lambda: (
            isinstance(app.screen, TicketsScreen)
            and app.screen.page is not None
            and app.screen.query_one("#tickets", DataTable).row_count == 3
        ),
        "the list",
    )
    await drawn(pilot, "EXP-1 ", "EXP-3 ")


async def kanban(pilot: Pilot[Any]) -> None:
    app = await logged_in(pilot)
    app.navigate("Kanban")
    await wait_until(
        pilot,
        lambda: (
            isinstance(app.screen, KanbanScreen)
            and len(app.screen.query(OptionList)) == 5
            and app.screen.highlighted_card() is not None
        ),
        "the columns",
    )
    await drawn(pilot, "EXP-1", "EXP-3")


async def board(pilot: Pilot[Any]) -> None:
    app = await logged_in(pilot)
    app.navigate("Board")
    await wait_until(
        pilot,
        lambda: isinstance(app.screen, BoardScreen) and app.screen.board is not None,
        "the board",
    )
    await drawn(pilot, "Ada L.")


SCREENS: dict[str, tuple[str, Script]] = {
    "login": ("maya", login),
    "checkin": ("vera", checkin),
    "queues": ("maya", queues),
    "ticket": ("maya", ticket),
    "tickets": ("admin", tickets),
    "kanban": ("maya", kanban),
    "board": ("maya", board),
}
"""Screen -> (who logs in, how to get there and wait for its data)."""
CASES = [
    *((lang, size, screen) for lang in ("en",) for size in SIZES for screen in SCREENS),
    *(("ja", "80x24", screen) for screen in SCREENS),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("language", "size", "screen"),
    CASES,
    ids=["-".join(case) for case in CASES],
    indirect=["language"],
)
def test_main_screen(
    language: str,
    size: str,
    screen: str,
    desk: Engine,  # noqa: F811
    snap_compare: SnapCompare,
) -> None:
    user, script = SCREENS[screen]

    async def run_before(pilot: Pilot[Any]) -> None:
        await script(pilot)
        still_cursors(pilot.app)  # type: ignore[arg-type]

    app = desk_app(desk, user)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)
