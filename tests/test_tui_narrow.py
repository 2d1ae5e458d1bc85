"""An 80x24 terminal (issue 17 item 7): the kanban scrolls sideways to the focused column, the
ticket screen's Footer shows its key actions, the list screens show their key columns first.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine
from textual.pilot import Pilot
from textual.widgets import DataTable, OptionList

from cxdesk.app import CxDeskApp, create_app
from cxdesk.i18n import _, use_language
from cxdesk.screens.kanban import COLUMN_WIDTH, KanbanScreen
from cxdesk.screens.queues import QueuesScreen
from cxdesk.screens.ticket import TicketScreen
from cxdesk.screens.tickets import TicketsScreen
from tests.desk import build_small_desk, pull
from tests.test_tui import check_in
from tests.tui_helpers import drawn_text, log_in, run_app, wait_until

NARROW = (80, 24)


def kanban_ready(screen: object) -> bool:
    """The kanban of the small desk with its five columns read, a card highlighted."""
    return (
        isinstance(screen, KanbanScreen)
        and len(screen.query(OptionList)) == 5
        and screen.highlighted_card() is not None
    )


def desk_app(user: str) -> Any:
    return lambda engine: create_app(engine, user=user, poll_seconds=0.2, deliver=False)


def test_the_kanban_scrolls_to_the_focused_column(engine: Engine) -> None:
    build_small_desk(engine)  # five statuses: new, open, escalated, resolved, Follow up later
    check_in(engine, "360")

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        app.navigate("Kanban")
        await wait_until(pilot, lambda: kanban_ready(app.screen), "the kanban's columns")
        kanban = app.screen.query_one("#kanban")
        columns = list(app.screen.query(".kanban-column"))
        await wait_until(pilot, lambda: columns[0].outer_size.width == COLUMN_WIDTH, "sized")
        in_view = [kanban.region.contains_region(c.region) for c in columns]
        assert in_view == [True, True, True, False, False]  # three columns of 26 in 80
        await pilot.press("right", "right", "right")
        fourth = app.screen.query_one("#column-3", OptionList)
        await wait_until(pilot, lambda: fourth.has_focus, "the fourth column focused")
        await wait_until(
            pilot, lambda: kanban.region.contains_region(columns[3].region), "it in view"
        )
        assert kanban.scroll_x > 0 and not kanban.region.contains_region(columns[0].region)
        await pilot.press("left", "left", "left")
        await wait_until(
            pilot, lambda: kanban.region.contains_region(columns[0].region), "back to the first"
        )

    run_app(engine, desk_app("maya"), script, size=NARROW)


@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_ticket_footer_shows_resolve_and_escalate_at_80_columns(
    engine: Engine, language: str
) -> None:
    build_small_desk(engine)
    key = check_in(engine, "360")
    pull(engine, "maya", "360")
    use_language(language)  # the words of the language (the key stays: r, e)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        app.open_ticket(key)
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, TicketScreen) and app.screen.view is not None,
            "the ticket",
        )
        wanted = [f"r {_('Resolve')}", f"e {_('Escalate')}", f"m {_('Message customer')}"]
        await wait_until(
            pilot,
            lambda: all(w in drawn_text(app).splitlines()[-1] for w in wanted),
            f"{wanted} in the footer",
        )

    try:
        run_app(engine, desk_app("maya"), script, size=NARROW)
    finally:
        use_language(None)


def test_the_list_screens_show_their_key_columns_first(engine: Engine) -> None:
    build_small_desk(engine)
    key = check_in(engine, "360")

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        queues = app.screen.query_one("#queues", DataTable)
        await wait_until(pilot, lambda: "360" in queues.rows, "the queues' rows")
        # the queue, how many wait, how long, who is there to take them; the team last

        def cells() -> list[str]:
            return [str(cell) for cell in queues.get_row("360")]

        await wait_until(pilot, lambda: cells()[4] == "1 / 2", "Available: maya of two")
        assert (cells()[1], cells()[2], cells()[-1]) == ("360", "1", "360")
        app.navigate("Tickets")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, TicketsScreen) and app.screen.page is not None,
            "the ticket list",
        )
        row = [str(cell) for cell in app.screen.query_one("#tickets", DataTable).get_row(key)]
        assert row[:3] == [key, "Ada Lovelace", "New"]

    run_app(engine, desk_app("maya"), script, size=NARROW)


def test_every_queue_is_in_sight_above_the_sideways_scrollbar(engine: Engine) -> None:
    """Ten rows at 80x24 (the demo desk's: "Any" and nine queues), scrolled sideways: the
    queues table is as high as its rows and the scrollbar under them, so the last row is in
    sight (at half the screen, the scrollbar covered it); my tickets get the rest."""
    from cxdesk.store import directory
    from cxdesk.store.db import transaction

    build_small_desk(engine)
    with transaction(engine) as s:
        for number in range(6):  # the small desk's three, and six more, on teams of their own
            name = f"Website/App Feedback {number}"  # wide: the table scrolls sideways
            directory.add_team(s, actor=None, name=name)
            directory.add_queue(s, actor=None, name=name, team=name)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        queues = app.screen.query_one("#queues", DataTable)
        await wait_until(pilot, lambda: queues.row_count == 10, "the queues' rows")
        await wait_until(pilot, lambda: queues.show_horizontal_scrollbar, "scrolled sideways")
        await wait_until(pilot, lambda: queues.max_scroll_y == 0, "every row in sight")
        mine = app.screen.query_one("#mine", DataTable)
        assert mine.region.y > queues.region.bottom and mine.region.height > 2

    run_app(engine, desk_app("maya"), script, size=NARROW)
