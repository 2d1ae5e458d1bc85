"""Snapshots of the desk-wide screens (ticket list, kanban, stream, history, board) on the
fixed desk of ``tests/test_tui_snapshots.py`` (fixed times, fixed clock, local zone UTC).

After a deliberate change of one of these screens:
``pytest tests/test_tui_views_snapshots.py --snapshot-update``, then look at the SVGs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Engine
from textual.pilot import Pilot
from textual.widgets import OptionList

from cxdesk.app import CxDeskApp
from cxdesk.screens.board import BoardScreen
from cxdesk.screens.history import HistoryScreen
from cxdesk.screens.kanban import KanbanScreen
from cxdesk.screens.stream import StreamScreen
from cxdesk.screens.tickets import TicketsScreen
from tests.test_tui_snapshots import (  # noqa: F401 (desk and _utc_local_time are fixtures)
    SIZE,
    SnapCompare,
    _utc_local_time,
    desk,
    desk_app,
    log_in,
    still_cursors,
)
from tests.test_tui_views import wait_until

WIDE = (SIZE[0] + 40, SIZE[1])


def opened(name: str, ready: Callable[[Any], object]) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Log in, open the screen ``name`` from the palette's navigation, wait until ``ready``."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, CxDeskApp)
        await log_in(pilot)
        await wait_until(pilot, lambda: app.user is not None, "the login")
        app.navigate(name)
        await wait_until(pilot, lambda: ready(app.screen), name)
        await pilot.pause(0.1)
        still_cursors(app)

    return run_before


def test_tickets_screen(desk: Engine, snap_compare: SnapCompare) -> None:  # noqa: F811
    def ready(screen: Any) -> bool:
        return isinstance(screen, TicketsScreen) and screen.page is not None

    run_before = opened("Tickets", ready)
    assert snap_compare(desk_app(desk, "admin"), terminal_size=WIDE, run_before=run_before)


def test_kanban_screen(desk: Engine, snap_compare: SnapCompare) -> None:  # noqa: F811
    def ready(screen: Any) -> bool:
        return (
            isinstance(screen, KanbanScreen)
            and len(screen.query(OptionList)) == 5
            and screen.highlighted_card() is not None
        )

    run_before = opened("Kanban", ready)
    assert snap_compare(desk_app(desk, "maya"), terminal_size=WIDE, run_before=run_before)


def test_stream_screen(desk: Engine, snap_compare: SnapCompare) -> None:  # noqa: F811
    def ready(screen: Any) -> bool:
        return isinstance(screen, StreamScreen) and screen.read is not None

    run_before = opened("Stream", ready)
    assert snap_compare(desk_app(desk, "admin"), terminal_size=WIDE, run_before=run_before)


def test_history_screen(desk: Engine, snap_compare: SnapCompare) -> None:  # noqa: F811
    def ready(screen: Any) -> bool:
        return isinstance(screen, HistoryScreen) and screen.read is not None

    run_before = opened("History", ready)
    assert snap_compare(desk_app(desk, "maya"), terminal_size=SIZE, run_before=run_before)


def test_board_screen(desk: Engine, snap_compare: SnapCompare) -> None:  # noqa: F811
    def ready(screen: Any) -> bool:
        return isinstance(screen, BoardScreen) and screen.board is not None

    run_before = opened("Board", ready)
    assert snap_compare(desk_app(desk, "maya"), terminal_size=SIZE, run_before=run_before)
