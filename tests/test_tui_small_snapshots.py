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
from textual.widgets import DataTable, Input

from cxdesk.app import CxDeskApp
from cxdesk.i18n import use_language
from cxdesk.screens.board import BoardScreen
from cxdesk.screens.checkin import CheckinScreen
from cxdesk.screens.tickets import TicketsScreen
from tests.test_tui_narrow import kanban_ready
from tests.test_tui_snapshots import (  # noqa: F401 (desk and _utc_local_time are fixtures)
    SnapCompare,
    _utc_local_time,
    desk,
    desk_app,
    log_in,
    queues_shown,
    still_cursors,
    ticket_shown,
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


def opened(name: str, ready: Callable[[object], bool], *shown: str) -> Script:
    """Log in, open the screen ``name`` (palette navigation), wait until ``ready`` and until it
    draws ``shown``."""

    async def script(pilot: Pilot[Any]) -> None:
        app = await logged_in(pilot)
        app.navigate(name)
        await wait_until(pilot, lambda: ready(app.screen), name)
        await drawn(pilot, *shown)

    return script


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
    await ticket_shown(pilot)
    await drawn(pilot, "Ada Lovelace needs help")


def tickets_ready(screen: object) -> bool:
    return (
        isinstance(screen, TicketsScreen)
        and screen.page is not None
        and screen.query_one("#tickets", DataTable).row_count == 3
    )


def board_ready(screen: object) -> bool:
    return isinstance(screen, BoardScreen) and screen.board is not None


SCREENS: dict[str, tuple[str, Script]] = {
    "login": ("maya", login),
    "checkin": ("vera", checkin),
    "queues": ("maya", queues),
    "ticket": ("maya", ticket),
    "tickets": ("admin", opened("Tickets", tickets_ready, "EXP-1 ", "EXP-3 ")),
    "kanban": ("maya", opened("Kanban", kanban_ready, "EXP-1", "EXP-3")),
    "board": ("maya", opened("Board", board_ready, "Ada L.")),
}
"""Screen -> (who logs in, how to get there and wait for its data)."""
CASES = [(lang, size, screen) for lang in ("en", "ja") for size in SIZES for screen in SCREENS]


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
